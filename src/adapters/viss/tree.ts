import { type VissError, vissErrors } from './errors.ts';

/** One node of the VSS tree with the metadata VISS clients can ask for. */
export interface VssNode {
  type: 'branch' | 'sensor' | 'actuator' | 'attribute';
  datatype?: string;
  unit?: string;
  min?: number;
  max?: number;
  allowed?: Array<string | number>;
  description?: string;
}

/** A value as VISS carries it: a string, or an array of strings for array signals. */
export type WireValue = string | string[];

/** A typed value as the simulator and the twin use it. */
export type SignalValue = boolean | number | string | string[];

const INTEGER_RANGES: Record<string, [number, number]> = {
  uint8: [0, 255],
  uint16: [0, 65_535],
  uint32: [0, 4_294_967_295],
  int8: [-128, 127],
  int16: [-32_768, 32_767],
  int32: [-2_147_483_648, 2_147_483_647],
};

/**
 * The part of the VSS tree one vehicle offers: the leaves it has values for and every branch above
 * them. Resolves request paths (a leaf, a branch meaning every leaf below it, `*` for one segment)
 * into leaves, so the session never walks strings itself.
 */
export class SignalTree {
  private readonly nodes = new Map<string, VssNode>();
  private readonly children = new Map<string, string[]>();

  constructor(leaves: Iterable<string>, catalogue: Readonly<Record<string, VssNode>>) {
    for (const leaf of leaves) {
      const node = catalogue[leaf];
      if (!node || node.type === 'branch') throw new Error(`${leaf} is not a VSS leaf in the catalogue`);
      const parts = leaf.split('.');
      for (let i = 1; i <= parts.length; i++) {
        const path = parts.slice(0, i).join('.');
        if (this.nodes.has(path)) continue;
        this.nodes.set(path, catalogue[path] ?? { type: 'branch' });
        if (i > 1) {
          const parent = parts.slice(0, i - 1).join('.');
          this.children.set(parent, [...(this.children.get(parent) ?? []), path]);
        }
      }
    }
  }

  node(path: string): VssNode | undefined {
    return this.nodes.get(path);
  }

  /** Every leaf this tree offers, in tree order. */
  leaves(under = 'Vehicle'): string[] {
    const node = this.nodes.get(under);
    if (!node) return [];
    if (node.type !== 'branch') return [under];
    return (this.children.get(under) ?? []).flatMap((child) => this.leaves(child));
  }

  childrenOf(path: string): string[] {
    return this.children.get(path) ?? [];
  }

  /**
   * The leaves a request addresses: `path` alone, or each of `relative` (the `paths` filter)
   * below it. Every pattern must address at least one node (VISS core, paths filter).
   */
  resolve(path: string, relative?: string[]): string[] | VissError {
    const base = normalisePath(path);
    if (base === null) return vissErrors.badPath(path);
    const patterns = relative?.length ? relative.map((r) => normalisePath(r)) : [''];
    const found = new Set<string>();
    for (const pattern of patterns) {
      if (pattern === null) return vissErrors.badPath(String(relative));
      const full = pattern ? `${base}.${pattern}` : base;
      const matched = this.match(full.split('.'));
      if (matched.length === 0) return vissErrors.unknownPath(full);
      for (const node of matched) for (const leaf of this.leaves(node)) found.add(leaf);
    }
    return [...found];
  }

  /** Nodes matching a pattern whose segments may be `*` (one segment each). */
  private match(segments: string[]): string[] {
    let current = (segments[0] === 'Vehicle' || segments[0] === '*') && this.nodes.has('Vehicle') ? ['Vehicle'] : [];
    for (const segment of segments.slice(1)) {
      current = current.flatMap((path) =>
        this.childrenOf(path).filter((child) => segment === '*' || child.slice(child.lastIndexOf('.') + 1) === segment),
      );
      if (current.length === 0) break;
    }
    return current;
  }
}

/** Dots or slashes as delimiters (VISS core allows both); null for an empty or odd path. */
export function normalisePath(path: unknown): string | null {
  if (typeof path !== 'string' || path.length === 0 || path.length > 512) return null;
  const dotted = path.replace(/\//g, '.').replace(/^\.+|\.+$/g, '');
  if (!/^(\*|[A-Za-z0-9_]+)(\.(\*|[A-Za-z0-9_]+))*$/.test(dotted)) return null;
  return dotted;
}

/** The VISS string form of a typed value. */
export function toWire(value: SignalValue): WireValue {
  if (Array.isArray(value)) return value.map(String);
  return String(value);
}

/**
 * Reads a value a client sent for a leaf: a string per VISS, or a JSON boolean/number, which many
 * clients send anyway. Checks the VSS datatype, limits and allowed values.
 */
export function fromWire(node: VssNode, raw: unknown): SignalValue | VissError {
  const datatype = node.datatype ?? 'string';
  if (datatype.endsWith('[]')) {
    if (!Array.isArray(raw) || raw.length > 1000) return vissErrors.wrongType(datatype);
    const items: string[] = [];
    for (const item of raw) {
      const one = fromWire({ ...node, datatype: datatype.slice(0, -2) }, item);
      if (typeof one === 'object' && !Array.isArray(one)) return one;
      items.push(String(one));
    }
    return items;
  }
  if (datatype === 'boolean') {
    if (raw === true || raw === 'true') return true;
    if (raw === false || raw === 'false') return false;
    return vissErrors.wrongType(datatype);
  }
  if (datatype === 'string') {
    if (typeof raw !== 'string' || raw.length > 4096) return vissErrors.wrongType(datatype);
    if (node.allowed && !node.allowed.includes(raw))
      return vissErrors.outsideLimit(`one of ${node.allowed.join(', ')}`);
    return raw;
  }
  const number = typeof raw === 'number' ? raw : typeof raw === 'string' ? decimalNumber(raw) : Number.NaN;
  if (!Number.isFinite(number)) return vissErrors.wrongType(datatype);
  const range = INTEGER_RANGES[datatype];
  if (range && !Number.isInteger(number)) return vissErrors.wrongType(datatype);
  const min = Math.max(node.min ?? -Infinity, range?.[0] ?? -Infinity);
  const max = Math.min(node.max ?? Infinity, range?.[1] ?? Infinity);
  if (number < min || number > max) return vissErrors.outsideLimit(`between ${min} and ${max}`);
  return number;
}

/** Plain decimal notation, as VSS values are written: `Number()` alone also reads "0x10" as 16. */
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

/** The number a decimal string stands for, or NaN for anything else (hex, binary, "", "NaN"). */
export function decimalNumber(text: string): number {
  const trimmed = text.trim();
  return DECIMAL.test(trimmed) ? Number(trimmed) : Number.NaN;
}
