/**
 * Minimum-cost flow with real-valued capacities, by successive shortest paths (Dijkstra on
 * reduced costs with node potentials). The charge planner is a transportation problem: energy
 * flows from each car through the slots it may charge in to the site's connection, each slot
 * costing its price. Min-cost flow solves that exactly, where a greedy choice of cheap slots does
 * not when cars with different deadlines compete for the same fuse.
 */

const EPSILON = 1e-9;

interface Edge {
  to: number;
  capacity: number;
  cost: number;
  flow: number;
  /** Index of the reverse edge in `edges`. */
  reverse: number;
}

export class FlowNetwork {
  private readonly edges: Edge[] = [];
  private readonly outgoing: number[][];

  constructor(readonly size: number) {
    this.outgoing = Array.from({ length: size }, () => []);
  }

  /** Adds an edge and returns its index, to read its flow afterwards. */
  addEdge(from: number, to: number, capacity: number, cost: number): number {
    const index = this.edges.length;
    this.edges.push({ to, capacity, cost, flow: 0, reverse: index + 1 });
    this.edges.push({ to: from, capacity: 0, cost: -cost, flow: 0, reverse: index });
    this.outgoing[from].push(index);
    this.outgoing[to].push(index + 1);
    return index;
  }

  flowOn(edge: number): number {
    return this.edges[edge].flow;
  }

  /**
   * Sends as much flow as fits from `source` to `sink` at the least total cost. `order` lists
   * the nodes in a topological order of the original (acyclic) network, which gives correct
   * starting potentials even when some costs are negative (negative prices happen).
   */
  solve(source: number, sink: number, order: number[]): { flow: number; cost: number } {
    const potential = new Float64Array(this.size).fill(Number.POSITIVE_INFINITY);
    potential[source] = 0;
    for (const node of order) {
      if (potential[node] === Number.POSITIVE_INFINITY) continue;
      for (const e of this.outgoing[node]) {
        const edge = this.edges[e];
        if (edge.capacity > EPSILON && potential[node] + edge.cost < potential[edge.to]) {
          potential[edge.to] = potential[node] + edge.cost;
        }
      }
    }
    for (let i = 0; i < this.size; i++) if (potential[i] === Number.POSITIVE_INFINITY) potential[i] = 0;

    let flow = 0;
    let cost = 0;
    const distance = new Float64Array(this.size);
    const via = new Int32Array(this.size);
    for (;;) {
      distance.fill(Number.POSITIVE_INFINITY);
      via.fill(-1);
      distance[source] = 0;
      const heap = new MinHeap();
      heap.push(0, source);
      while (heap.length) {
        const [d, node] = heap.pop();
        if (d > distance[node] + EPSILON) continue;
        for (const e of this.outgoing[node]) {
          const edge = this.edges[e];
          if (edge.capacity - edge.flow <= EPSILON) continue;
          // Reduced costs are ≥ 0 up to rounding; clamping keeps Dijkstra's order sound.
          const reduced = Math.max(0, edge.cost + potential[node] - potential[edge.to]);
          const next = d + reduced;
          if (next < distance[edge.to] - EPSILON) {
            distance[edge.to] = next;
            via[edge.to] = e;
            heap.push(next, edge.to);
          }
        }
      }
      if (distance[sink] === Number.POSITIVE_INFINITY) break;
      for (let i = 0; i < this.size; i++) if (distance[i] < Number.POSITIVE_INFINITY) potential[i] += distance[i];
      let push = Number.POSITIVE_INFINITY;
      for (let node = sink; node !== source; ) {
        const edge = this.edges[via[node]];
        push = Math.min(push, edge.capacity - edge.flow);
        node = this.edges[edge.reverse].to;
      }
      for (let node = sink; node !== source; ) {
        const edge = this.edges[via[node]];
        edge.flow += push;
        this.edges[edge.reverse].flow -= push;
        cost += push * edge.cost;
        node = this.edges[edge.reverse].to;
      }
      flow += push;
    }
    return { flow, cost };
  }
}

/** A binary heap of (priority, node) pairs. */
class MinHeap {
  private readonly keys: number[] = [];
  private readonly values: number[] = [];

  get length(): number {
    return this.keys.length;
  }

  push(key: number, value: number): void {
    const { keys, values } = this;
    let i = keys.length;
    keys.push(key);
    values.push(value);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (keys[parent] <= key) break;
      keys[i] = keys[parent];
      values[i] = values[parent];
      i = parent;
    }
    keys[i] = key;
    values[i] = value;
  }

  pop(): [number, number] {
    const { keys, values } = this;
    const top: [number, number] = [keys[0], values[0]];
    const lastKey = keys.pop()!;
    const lastValue = values.pop()!;
    const n = keys.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        if (left >= n) break;
        const right = left + 1;
        const child = right < n && keys[right] < keys[left] ? right : left;
        if (keys[child] >= lastKey) break;
        keys[i] = keys[child];
        values[i] = values[child];
        i = child;
      }
      keys[i] = lastKey;
      values[i] = lastValue;
    }
    return top;
  }
}
