import { createHash } from 'node:crypto';
import type { Command, Report } from '../../core/events.ts';
import type { Logger } from '../../core/log.ts';
import type { DataSchema } from '../../model/schema.ts';
import {
  type ActionSpec,
  type PropertySpec,
  resolveAction,
  slugify,
  type Thing,
  vocabularyActions,
  vocabularyProperties,
} from '../../model/thing.ts';
import { propertySchema } from '../../model/vocabulary.ts';
import type { Adapter, AdapterContext } from '../adapter.ts';
import type { BrokerSession } from './broker.ts';
import type { MqttLink, MqttQos } from './connection.ts';
import {
  type CompiledTemplate,
  compileTemplate,
  JsonPayload,
  plainValue,
  TemplateError,
  TemplateTooLongError,
  templateText,
} from './template.ts';

/**
 * Home Assistant MQTT discovery: Zigbee2MQTT, Tasmota, ESPHome and Shelly announce each entity
 * with a retained JSON config under `<prefix>/<component>/[<node_id>/]<object_id>/config` (or a
 * whole device under `<prefix>/device/<object_id>/config`). This adapter turns those configs
 * into Triad things (one per physical device), their state topics into reports, and Triad
 * commands into the payloads each device asked for.
 */

export interface HomeAssistantDiscoveryOptions {
  link: MqttLink;
  householdId: string;
  /** The discovery prefix devices publish under; Home Assistant's default is `homeassistant`. */
  prefix?: string;
  /**
   * The device account a config topic was last published by, or undefined for the hub's trusted
   * side (its own login, anonymous clients). Only the embedded broker knows; without it (an
   * external broker, `--mqtt-url`) every config is taken as the trusted side's.
   */
  announcer?: (topic: string) => Announcer | undefined;
}

/** Who announced a config, and the topics the broker lets that account use. */
export type Announcer = Pick<BrokerSession, 'account' | 'mayPublish' | 'maySubscribe'>;

/** Real configs and states are a few KiB; anything bigger is a mistake or an attack. */
const MAX_PAYLOAD_BYTES = 64 * 1024;
const TEMPLATE_CACHE_LIMIT = 1000;

type Json = Record<string, unknown>;

function isRecord(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

// ---------------------------------------------------------------------------------------------
// Abbreviations: devices with little flash send `stat_t` for `state_topic` and so on.

const ABBREVIATIONS: Record<string, string> = {
  act_t: 'action_topic',
  act_tpl: 'action_template',
  atype: 'automation_type',
  aux_cmd_t: 'aux_command_topic',
  aux_stat_tpl: 'aux_state_template',
  aux_stat_t: 'aux_state_topic',
  av_tones: 'available_tones',
  avty: 'availability',
  avty_mode: 'availability_mode',
  avty_t: 'availability_topic',
  avty_tpl: 'availability_template',
  b_tpl: 'blue_template',
  bri_cmd_t: 'brightness_command_topic',
  bri_cmd_tpl: 'brightness_command_template',
  bri_scl: 'brightness_scale',
  bri_stat_t: 'brightness_state_topic',
  bri_tpl: 'brightness_template',
  bri_val_tpl: 'brightness_value_template',
  clr_temp_cmd_tpl: 'color_temp_command_template',
  clr_temp_cmd_t: 'color_temp_command_topic',
  clr_temp_k: 'color_temp_kelvin',
  clr_temp_stat_t: 'color_temp_state_topic',
  clr_temp_tpl: 'color_temp_template',
  clr_temp_val_tpl: 'color_temp_value_template',
  clrm: 'color_mode',
  clrm_stat_t: 'color_mode_state_topic',
  clrm_val_tpl: 'color_mode_value_template',
  cmd_off_tpl: 'command_off_template',
  cmd_on_tpl: 'command_on_template',
  cmd_t: 'command_topic',
  cmd_tpl: 'command_template',
  cmps: 'components',
  cod_arm_req: 'code_arm_required',
  cod_dis_req: 'code_disarm_required',
  cod_form: 'code_format',
  cod_trig_req: 'code_trigger_required',
  cont_type: 'content_type',
  curr_hum_t: 'current_humidity_topic',
  curr_hum_tpl: 'current_humidity_template',
  curr_temp_t: 'current_temperature_topic',
  curr_temp_tpl: 'current_temperature_template',
  dev: 'device',
  dev_cla: 'device_class',
  dir_cmd_t: 'direction_command_topic',
  dir_cmd_tpl: 'direction_command_template',
  dir_stat_t: 'direction_state_topic',
  dir_val_tpl: 'direction_value_template',
  e: 'encoding',
  en: 'enabled_by_default',
  ent_cat: 'entity_category',
  ent_pic: 'entity_picture',
  evt_typ: 'event_types',
  exp_aft: 'expire_after',
  fan_mode_cmd_tpl: 'fan_mode_command_template',
  fan_mode_cmd_t: 'fan_mode_command_topic',
  fan_mode_stat_tpl: 'fan_mode_state_template',
  fan_mode_stat_t: 'fan_mode_state_topic',
  flsh_tlng: 'flash_time_long',
  flsh_tsht: 'flash_time_short',
  frc_upd: 'force_update',
  fx_cmd_t: 'effect_command_topic',
  fx_cmd_tpl: 'effect_command_template',
  fx_list: 'effect_list',
  fx_stat_t: 'effect_state_topic',
  fx_tpl: 'effect_template',
  fx_val_tpl: 'effect_value_template',
  g_tpl: 'green_template',
  hs_cmd_t: 'hs_command_topic',
  hs_cmd_tpl: 'hs_command_template',
  hs_stat_t: 'hs_state_topic',
  hs_val_tpl: 'hs_value_template',
  hum_cmd_t: 'target_humidity_command_topic',
  hum_cmd_tpl: 'target_humidity_command_template',
  hum_stat_t: 'target_humidity_state_topic',
  hum_stat_tpl: 'target_humidity_state_template',
  ic: 'icon',
  img_e: 'image_encoding',
  img_t: 'image_topic',
  init: 'initial',
  json_attr: 'json_attributes',
  json_attr_t: 'json_attributes_topic',
  json_attr_tpl: 'json_attributes_template',
  l_ver_t: 'latest_version_topic',
  l_ver_tpl: 'latest_version_template',
  lrst_t: 'last_reset_topic',
  lrst_val_tpl: 'last_reset_value_template',
  max_hum: 'max_humidity',
  max_kelvin: 'max_kelvin',
  max_mirs: 'max_mireds',
  max_temp: 'max_temp',
  min_hum: 'min_humidity',
  min_kelvin: 'min_kelvin',
  min_mirs: 'min_mireds',
  min_temp: 'min_temp',
  mode_cmd_tpl: 'mode_command_template',
  mode_cmd_t: 'mode_command_topic',
  mode_stat_t: 'mode_state_topic',
  mode_stat_tpl: 'mode_state_template',
  o: 'origin',
  obj_id: 'object_id',
  off_dly: 'off_delay',
  on_cmd_type: 'on_command_type',
  opt: 'optimistic',
  osc_cmd_t: 'oscillation_command_topic',
  osc_cmd_tpl: 'oscillation_command_template',
  osc_stat_t: 'oscillation_state_topic',
  osc_val_tpl: 'oscillation_value_template',
  p: 'platform',
  pct_cmd_t: 'percentage_command_topic',
  pct_cmd_tpl: 'percentage_command_template',
  pct_stat_t: 'percentage_state_topic',
  pct_val_tpl: 'percentage_value_template',
  pl: 'payload',
  pl_arm_away: 'payload_arm_away',
  pl_arm_custom_b: 'payload_arm_custom_bypass',
  pl_arm_home: 'payload_arm_home',
  pl_arm_nite: 'payload_arm_night',
  pl_arm_vacation: 'payload_arm_vacation',
  pl_avail: 'payload_available',
  pl_cln_sp: 'payload_clean_spot',
  pl_cls: 'payload_close',
  pl_disarm: 'payload_disarm',
  pl_home: 'payload_home',
  pl_inst: 'payload_install',
  pl_lock: 'payload_lock',
  pl_loc: 'payload_locate',
  pl_not_avail: 'payload_not_available',
  pl_not_home: 'payload_not_home',
  pl_off: 'payload_off',
  pl_on: 'payload_on',
  pl_open: 'payload_open',
  pl_osc_off: 'payload_oscillation_off',
  pl_osc_on: 'payload_oscillation_on',
  pl_paus: 'payload_pause',
  pl_prs: 'payload_press',
  pl_ret: 'payload_return_to_base',
  pl_rst: 'payload_reset',
  pl_rst_hum: 'payload_reset_humidity',
  pl_rst_mode: 'payload_reset_mode',
  pl_rst_pct: 'payload_reset_percentage',
  pl_rst_pr_mode: 'payload_reset_preset_mode',
  pl_stop: 'payload_stop',
  pl_strt: 'payload_start',
  pl_stpa: 'payload_start_pause',
  pl_toff: 'payload_turn_off',
  pl_ton: 'payload_turn_on',
  pl_trig: 'payload_trigger',
  pl_unlk: 'payload_unlock',
  pos_clsd: 'position_closed',
  pos_open: 'position_open',
  pos_t: 'position_topic',
  pos_tpl: 'position_template',
  pow_cmd_t: 'power_command_topic',
  pow_cmd_tpl: 'power_command_template',
  pr_mode_cmd_t: 'preset_mode_command_topic',
  pr_mode_cmd_tpl: 'preset_mode_command_template',
  pr_mode_stat_t: 'preset_mode_state_topic',
  pr_mode_val_tpl: 'preset_mode_value_template',
  pr_modes: 'preset_modes',
  r_tpl: 'red_template',
  rel_s: 'release_summary',
  rel_u: 'release_url',
  ret: 'retain',
  rgb_cmd_tpl: 'rgb_command_template',
  rgb_cmd_t: 'rgb_command_topic',
  rgb_stat_t: 'rgb_state_topic',
  rgb_val_tpl: 'rgb_value_template',
  rgbw_cmd_tpl: 'rgbw_command_template',
  rgbw_cmd_t: 'rgbw_command_topic',
  rgbw_stat_t: 'rgbw_state_topic',
  rgbw_val_tpl: 'rgbw_value_template',
  rgbww_cmd_tpl: 'rgbww_command_template',
  rgbww_cmd_t: 'rgbww_command_topic',
  rgbww_stat_t: 'rgbww_state_topic',
  rgbww_val_tpl: 'rgbww_value_template',
  send_cmd_t: 'send_command_topic',
  send_if_off: 'send_if_off',
  set_pos_tpl: 'set_position_template',
  set_pos_t: 'set_position_topic',
  sup_clrm: 'supported_color_modes',
  sup_dur: 'support_duration',
  sup_feat: 'supported_features',
  sup_vol: 'support_volume_set',
  src_type: 'source_type',
  stat_cla: 'state_class',
  stat_clsd: 'state_closed',
  stat_closing: 'state_closing',
  stat_jam: 'state_jammed',
  stat_locked: 'state_locked',
  stat_locking: 'state_locking',
  stat_off: 'state_off',
  stat_on: 'state_on',
  stat_open: 'state_open',
  stat_opening: 'state_opening',
  stat_stopped: 'state_stopped',
  stat_unlocked: 'state_unlocked',
  stat_unlocking: 'state_unlocking',
  stat_t: 'state_topic',
  stat_tpl: 'state_template',
  stat_val_tpl: 'state_value_template',
  stype: 'subtype',
  sug_dsp_prc: 'suggested_display_precision',
  swing_mode_cmd_tpl: 'swing_mode_command_template',
  swing_mode_cmd_t: 'swing_mode_command_topic',
  swing_mode_stat_tpl: 'swing_mode_state_template',
  swing_mode_stat_t: 'swing_mode_state_topic',
  t: 'topic',
  temp_cmd_tpl: 'temperature_command_template',
  temp_cmd_t: 'temperature_command_topic',
  temp_hi_cmd_tpl: 'temperature_high_command_template',
  temp_hi_cmd_t: 'temperature_high_command_topic',
  temp_hi_stat_tpl: 'temperature_high_state_template',
  temp_hi_stat_t: 'temperature_high_state_topic',
  temp_lo_cmd_tpl: 'temperature_low_command_template',
  temp_lo_cmd_t: 'temperature_low_command_topic',
  temp_lo_stat_tpl: 'temperature_low_state_template',
  temp_lo_stat_t: 'temperature_low_state_topic',
  temp_stat_tpl: 'temperature_state_template',
  temp_stat_t: 'temperature_state_topic',
  temp_unit: 'temperature_unit',
  tilt_clsd_val: 'tilt_closed_value',
  tilt_cmd_t: 'tilt_command_topic',
  tilt_cmd_tpl: 'tilt_command_template',
  tilt_inv_stat: 'tilt_invert_state',
  tilt_max: 'tilt_max',
  tilt_min: 'tilt_min',
  tilt_opnd_val: 'tilt_opened_value',
  tilt_opt: 'tilt_optimistic',
  tilt_status_t: 'tilt_status_topic',
  tilt_status_tpl: 'tilt_status_template',
  uniq_id: 'unique_id',
  unit_of_meas: 'unit_of_measurement',
  val_tpl: 'value_template',
  whit_cmd_t: 'white_command_topic',
  whit_scl: 'white_scale',
  xy_cmd_t: 'xy_command_topic',
  xy_cmd_tpl: 'xy_command_template',
  xy_stat_t: 'xy_state_topic',
  xy_val_tpl: 'xy_value_template',
};

const DEVICE_ABBREVIATIONS: Record<string, string> = {
  cns: 'connections',
  ids: 'identifiers',
  name: 'name',
  mf: 'manufacturer',
  mdl: 'model',
  mdl_id: 'model_id',
  hw: 'hw_version',
  sw: 'sw_version',
  sa: 'suggested_area',
  sn: 'serial_number',
  cu: 'configuration_url',
  via_device: 'via_device',
};

const ORIGIN_ABBREVIATIONS: Record<string, string> = { name: 'name', sw: 'sw_version', url: 'support_url' };

/** Spells out abbreviated keys; where a config has both spellings, the full one wins. */
function expandKeys(raw: Json, table: Record<string, string>): Json {
  const out: Json = {};
  for (const [key, value] of Object.entries(raw)) {
    const full = Object.hasOwn(table, key) ? table[key] : key;
    if (full !== key && Object.hasOwn(raw, full)) continue;
    out[full] = value;
  }
  return out;
}

/** Where payload options can be in a config: a component of a device config, an availability item. */
const MAX_PAYLOAD_OPTION_DEPTH = 4;

/**
 * Home Assistant reads every payload and state option as text (voluptuous's cv.string: str() of
 * a number), and compares rendered states with that text: `"payload_on": 1.0` is `1.0`, which a
 * state `1.0` (or `{{ value | float }}` of `1`) matches and a bare `1` does not. JSON.parse has
 * lost the `.0` by then, so those options are made text here from the config as written. Other
 * numbers (`brightness_scale`, `min`) stay numbers.
 */
function payloadsAsText(config: JsonPayload, container: object, depth: number): void {
  if (depth > MAX_PAYLOAD_OPTION_DEPTH) return;
  for (const [key, value] of Object.entries(container)) {
    if (typeof value === 'number' && !Array.isArray(container) && isPayloadOption(key)) {
      (container as Json)[key] = config.numberText(container, key);
    } else if (typeof value === 'object' && value !== null) {
      payloadsAsText(config, value, depth + 1);
    }
  }
}

function isPayloadOption(key: string): boolean {
  const full = Object.hasOwn(ABBREVIATIONS, key) ? ABBREVIATIONS[key] : key;
  return /^(payload|state)(_|$)/.test(full) && !/_(topic|template)$/.test(full);
}

function expandConfig(raw: Json): Json {
  const config = expandKeys(raw, ABBREVIATIONS);
  if (isRecord(config.device)) config.device = expandKeys(config.device, DEVICE_ABBREVIATIONS);
  if (isRecord(config.origin)) config.origin = expandKeys(config.origin, ORIGIN_ABBREVIATIONS);
  if (Array.isArray(config.availability)) {
    config.availability = config.availability.map((item) => (isRecord(item) ? expandKeys(item, ABBREVIATIONS) : item));
  }
  return config;
}

/**
 * `~` at the start or end of a topic stands for the config's base topic (`"~": "tasmota_1A2B3C/"`).
 * Replaces the config's topics, never changes a value it may share with another config.
 */
function expandBaseTopic(config: Json): void {
  const base = config['~'];
  if (typeof base !== 'string') return;
  const expand = (topic: string) => {
    if (topic.startsWith('~')) return base + topic.slice(1);
    if (topic.endsWith('~')) return topic.slice(0, -1) + base;
    return topic;
  };
  for (const [key, value] of Object.entries(config)) {
    if (key.endsWith('_topic') && typeof value === 'string') config[key] = expand(value);
  }
  // A new list of new items: in a device config the list is the device's, shared by every
  // component, and each component may have its own `~`.
  if (Array.isArray(config.availability)) {
    config.availability = config.availability.map((item) =>
      isRecord(item) && typeof item.topic === 'string' ? { ...item, topic: expand(item.topic) } : item,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Reading configs

const COMPONENTS = ['switch', 'light', 'sensor', 'binary_sensor', 'lock', 'climate', 'cover'] as const;
type Component = (typeof COMPONENTS)[number];

/** Home Assistant components that exist but have no Triad vocabulary yet: noted, not warned about. */
const UNMAPPED_COMPONENTS = new Set([
  'alarm_control_panel',
  'button',
  'camera',
  'device_automation',
  'device_tracker',
  'event',
  'fan',
  'humidifier',
  'image',
  'lawn_mower',
  'notify',
  'number',
  'scene',
  'select',
  'siren',
  'tag',
  'text',
  'update',
  'vacuum',
  'valve',
  'water_heater',
]);

function isComponent(name: string): name is Component {
  return (COMPONENTS as readonly string[]).includes(name);
}

/** What a discovery topic says: which component, and the ids that make the entity unique. */
interface DiscoveryAddress {
  component: string;
  nodeId?: string;
  objectId: string;
}

function parseDiscoveryTopic(prefix: string, topic: string): DiscoveryAddress | undefined {
  if (!topic.startsWith(`${prefix}/`) || !topic.endsWith('/config')) return undefined;
  const parts = topic.slice(prefix.length + 1, -'/config'.length).split('/');
  if (parts.length === 2) return { component: parts[0], objectId: parts[1] };
  if (parts.length === 3) return { component: parts[0], nodeId: parts[1], objectId: parts[2] };
  return undefined;
}

/** The device block, as far as Triad uses it; kept in thing.meta for the API to show. */
interface DeviceInfo {
  identifiers: string[];
  name?: string;
  manufacturer?: string;
  model?: string;
  sw_version?: string;
  hw_version?: string;
  suggested_area?: string;
}

/** C0 and C1 control characters, which have no place in a name. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point.
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f]+/g;
/**
 * Invisible characters that change how a name reads: a zero-width space or byte-order mark hides
 * in it, bidirectional embeddings, overrides and isolates reorder what follows (the API refuses
 * them in names, see NAME_PATTERN; a device's announcement has them dropped). Joiners stay.
 */
const HIDDEN_CHARACTERS = /[\u200b\u202a-\u202e\u2066-\u2069\ufeff]+/g;
/** Longer names are cut: a thing's name is shown on the dashboard and written to the log. */
const MAX_NAME_LENGTH = 200;

/**
 * A device's or entity's name as the hub shows it, or undefined when it has nothing to show.
 * Any device on the broker may announce itself, so control characters (a NUL, a terminal escape
 * that recolours the log) and hidden ones (HIDDEN_CHARACTERS) are dropped, spaces trimmed (a name of spaces named a thing "   ", with
 * the id "thing") and the length bounded.
 */
export function shownText(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const text = value.replace(CONTROL_CHARACTERS, ' ').replace(HIDDEN_CHARACTERS, '').trim();
  // Cut by code point, so a name is never left ending in half an emoji.
  const shown = text.length > MAX_NAME_LENGTH ? Array.from(text).slice(0, MAX_NAME_LENGTH).join('').trimEnd() : text;
  return shown === '' ? undefined : shown;
}

const DEVICE_TEXTS = ['name', 'manufacturer', 'model', 'sw_version', 'hw_version', 'suggested_area'] as const;

function readDevice(value: unknown): DeviceInfo | undefined {
  if (!isRecord(value)) return undefined;
  const identifiers: string[] = [];
  const ids = value.identifiers;
  if (typeof ids === 'string' || typeof ids === 'number') identifiers.push(String(ids));
  if (Array.isArray(ids))
    for (const id of ids) if (typeof id === 'string' || typeof id === 'number') identifiers.push(String(id));
  // A device known only by its MAC (Shelly, Tasmota) lists connections instead of identifiers.
  if (Array.isArray(value.connections)) {
    for (const pair of value.connections) {
      if (Array.isArray(pair) && pair.length === 2) identifiers.push(`${pair[0]}:${pair[1]}`);
    }
  }
  const text = (key: string) => shownText(value[key]);
  const device: DeviceInfo = { identifiers: identifiers.sort() };
  for (const key of DEVICE_TEXTS) {
    const v = text(key);
    if (v !== undefined) device[key] = v;
  }
  return device;
}

/** What Triad keeps of one entity in `thing.meta.entities`: plain JSON, enough to run commands. */
export interface DiscoveredEntity {
  component: Component;
  configTopic: string;
  objectId: string;
  name: string | null;
  uniqueId?: string;
  /** The entity's config with abbreviations and `~` expanded (device and origin removed). */
  config: Json;
  /** Vocabulary role → property name on the thing (they differ when a sensor had to be renamed). */
  properties: Record<string, string>;
  /** The thing's action keys that this entity carries out. */
  actions: string[];
  /** Why part of this entity does not work (an unsupported template, a property clash). */
  problems: string[];
  /** The device account that announced it; absent for the hub's trusted side. */
  account?: string;
}

/** A config that passed checks, before it is placed on a thing. */
interface EntityDraft {
  key: string;
  component: Component;
  configTopic: string;
  objectId: string;
  config: Json;
  device?: DeviceInfo;
  /** The device account that announced it (see Announcer); absent for the hub's trusted side. */
  account?: string;
  problems: string[];
}

type Parsed<T> = { ok: true; value: T } | { ok: false; reason: string };

// ---------------------------------------------------------------------------------------------
// Values and units

/** A state that carries no value: Home Assistant's spellings for "unknown". */
const NO_VALUE_TEXTS = new Set(['', 'None', 'none', 'null', 'unknown', 'unavailable']);

/** A number from a reader's value; a template's float result (see renderResult) is its number. */
function numberFrom(result: unknown): number | undefined {
  const value = plainValue(result);
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (typeof value === 'string' && !NO_VALUE_TEXTS.has(value.trim())) {
    const n = Number(value.trim());
    return Number.isFinite(n) ? n : undefined;
  }
  return undefined;
}

function roundTo(value: number, decimals: number): number {
  const scale = 10 ** decimals;
  return Math.round(value * scale) / scale;
}

/** Maps a device scale (`low`…`high`, e.g. brightness 0…254 or a cover's closed…open) onto 0–100 %. */
function toPercent(raw: number, low: number, high: number): number {
  return high === low ? 0 : Math.round(((raw - low) / (high - low)) * 100);
}

function fromPercent(percent: number, low: number, high: number): number {
  return Math.round(low + (percent / 100) * (high - low));
}

/** Mireds are what Home Assistant and Zigbee use for colour temperature; Triad speaks Kelvin. */
function miredsToKelvin(mireds: number): number | undefined {
  return mireds > 0 ? Math.round(1_000_000 / mireds) : undefined;
}

function kelvinToMireds(kelvin: number): number {
  return Math.round(1_000_000 / kelvin);
}

function toCelsius(value: number, unit: string | undefined): number | undefined {
  switch (unit) {
    case undefined:
    case '°C':
    case 'C':
      return value;
    case '°F':
    case 'F':
      return roundTo(((value - 32) * 5) / 9, 2);
    case 'K':
      return roundTo(value - 273.15, 2);
    default:
      return undefined;
  }
}

function fromCelsius(value: number, unit: string | undefined): number {
  return unit === '°F' || unit === 'F' ? roundTo((value * 9) / 5 + 32, 1) : value;
}

/**
 * The vocabulary property each Home Assistant device class lands on, the units it accepts with
 * the factor into the vocabulary's own unit, and whether the unit must be stated (a battery
 * sensor without `%` may be a voltage or a raw reading, so only a percentage is `battery.level`).
 */
const SENSOR_UNITS: Record<
  string,
  { property: string; factors: Record<string, number> | 'temperature'; unitRequired?: boolean }
> = {
  temperature: { property: 'sensor.temperature', factors: 'temperature' },
  humidity: { property: 'sensor.humidity', factors: { '%': 1 } },
  illuminance: { property: 'sensor.illuminance', factors: { lx: 1 } },
  power: { property: 'sensor.power', factors: { W: 1, kW: 1000, mW: 0.001 } },
  energy: { property: 'sensor.energy', factors: { kWh: 1, Wh: 0.001, MWh: 1000 } },
  // A device's own battery is the same `battery.level` as a car's or a phone's, so one rule or
  // `?capability=battery` finds them all.
  battery: { property: 'battery.level', factors: { '%': 1 }, unitRequired: true },
};

/** The text of a config value used as a payload; HA configs sometimes give `true` or `1`. */
function payloadText(config: Json, key: string, fallback: string): string {
  const value = config[key];
  return value === undefined || value === null ? fallback : templateText(value);
}

function textOption(config: Json, key: string): string | undefined {
  const value = config[key];
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function numberOption(config: Json, key: string, fallback: number): number {
  const value = config[key];
  return typeof value === 'number' && Number.isFinite(value) ? value : fallback;
}

/**
 * Compares a rendered state with the entity's on/off payloads, as Home Assistant does: as the
 * text its template renders, so a float result is `1.0` and a list `['a', 1]`.
 */
function onOff(value: unknown, on: string, off: string): boolean | undefined {
  if (value === undefined) return undefined;
  const text = templateText(value);
  if (text === on) return true;
  if (text === off) return false;
  return typeof value === 'boolean' ? value : undefined;
}

/** Property names are snake_case; object ids are whatever the device chose. */
function snakeName(text: string): string {
  return slugify(text).replace(/[-.]+/g, '_');
}

// ---------------------------------------------------------------------------------------------
// Components: what each offers, how its state reads, how its commands are written

interface StateMessage {
  topic: string;
  text: string;
  /** The payload as JSON data, or undefined when it is not JSON. */
  json: unknown;
  /** The same payload for a template's `value_json`, where a number written `21.0` is a float. */
  valueJson: JsonPayload | undefined;
}

/**
 * Reads the value a state message carries, through `config[templateKey]` when it has one: the
 * payload text, or the template's result with its Python type (renderResult). Read it with
 * templateText for the text Home Assistant compares and stores, or with numberFrom for a number.
 */
type ValueReader = (message: StateMessage, templateKey?: string) => unknown;

/** One subscription of an entity: the topic and what it yields, as (role, value) pairs. */
interface StateReader {
  topic: string;
  read(message: StateMessage): Array<[string, unknown]>;
}

interface Outgoing {
  topic: string;
  payload: string;
}

interface CommandTools {
  config: Json;
  objectId: string;
  /** The twin's current value of one of the entity's roles. */
  current(role: string): unknown;
  /** Renders `config[templateKey]` with `vars` when the config has it, else returns `fallback`. */
  payload(templateKey: string | undefined, vars: Record<string, unknown>, fallback: string): string;
}

/** What renders a command's payload from an entity's template (the adapter). */
type PayloadRenderer = {
  commandPayload(
    config: Json,
    templateKey: string | undefined,
    vars: Record<string, unknown>,
    fallback: string,
  ): string;
};

/**
 * One command's tools, as a class rather than an object of closures: the hub makes one per
 * command, and methods on a prototype cost nothing to make, where closures cost two functions.
 */
class EntityCommandTools implements CommandTools {
  readonly config: Json;
  readonly objectId: string;
  constructor(
    private readonly ctx: AdapterContext,
    private readonly thing: Thing,
    private readonly entity: DiscoveredEntity,
    private readonly renderer: PayloadRenderer,
  ) {
    this.config = entity.config;
    this.objectId = entity.objectId;
  }
  current(role: string): unknown {
    return this.ctx.getValue(this.thing.householdId, this.thing.id, this.entity.properties[role] ?? role);
  }
  payload(templateKey: string | undefined, vars: Record<string, unknown>, fallback: string): string {
    return this.renderer.commandPayload(this.config, templateKey, vars, fallback);
  }
}

interface Offer {
  properties: Record<string, PropertySpec>;
  actions: Record<string, ActionSpec>;
}

interface ComponentBehaviour {
  /** Why this config cannot work (a missing topic), or null. */
  check(config: Json): string | null;
  /** The properties (keyed by role) and actions this entity gives its thing. */
  offer(config: Json, objectId: string): Offer;
  readers(config: Json, value: ValueReader, objectId: string): StateReader[];
  /** The messages that carry out `action`; throws when the entity cannot. */
  command(action: string, input: Record<string, unknown>, tools: CommandTools): Outgoing[];
}

function requireTopic(config: Json, key: string, objectId: string, action: string): string {
  const topic = textOption(config, key);
  if (!topic) throw new Error(`${objectId} has no ${key}, so it cannot ${action}`);
  return topic;
}

function unsupported(objectId: string, action: string): never {
  throw new Error(`${objectId} does not support ${action}`);
}

/**
 * Why a config's topics cannot be used, or null. A command topic is published to, so it may hold
 * no wildcard: a PUBLISH to `cmd/#` breaks the protocol, and the broker drops the hub's whole
 * connection (every device's subscription with it) each time the entity is commanded, while the
 * command reads as sent. Topics read may be filters, but only well-formed ones (`+` and `#` as
 * whole levels, `#` last). Home Assistant refuses such configs too. No topic may start with `$`:
 * those are the broker's own (`$SYS`), so a command published there drops the hub's connection
 * the same way, and a state read there shows the broker's clients to whoever configured it.
 */
function topicProblem(config: Json): string | null {
  const topics: Array<[string, unknown]> = Object.entries(config).filter(([key]) => key.endsWith('_topic'));
  if (Array.isArray(config.availability)) {
    for (const item of config.availability) if (isRecord(item)) topics.push(['availability.topic', item.topic]);
  }
  for (const [key, topic] of topics) {
    if (typeof topic !== 'string' || topic === '') continue;
    const quoted = JSON.stringify(topic.slice(0, 100));
    if (topic.includes('\u0000')) return `${key} ${quoted} holds a NUL character`;
    if (topic.startsWith('$'))
      return `${key} ${quoted} starts with "$": such topics are the broker's own ($SYS), not a device's`;
    if (key.endsWith('command_topic')) {
      if (/[+#]/.test(topic)) return `${key} ${quoted} holds a wildcard (+ or #): a command cannot be published to it`;
      continue;
    }
    const levels = topic.split('/');
    const bad = levels.some(
      (level, i) => /[+#]/.test(level) && (level.length > 1 || (level === '#' && i < levels.length - 1)),
    );
    if (bad)
      return `${key} ${quoted} is not a valid topic filter: + and # stand for whole levels, and # only for the last`;
  }
  return null;
}

/**
 * The QoS an entity asked for (`qos`: 0, 1 or 2, as a number or its text, as Home Assistant
 * coerces it), for its commands and its state and availability subscriptions alike; 0 otherwise.
 */
function qosOf(config: Json): MqttQos {
  const qos = typeof config.qos === 'number' || typeof config.qos === 'string' ? Number(config.qos) : 0;
  return qos === 1 || qos === 2 ? qos : 0;
}

function needsOneOf(config: Json, keys: string[], component: string): string | null {
  return keys.some((key) => textOption(config, key)) ? null : `a ${component} needs one of ${keys.join(', ')}`;
}

/** Copies an action's input schema with some of its fields removed (the device lacks them). */
function narrowInput(actions: Record<string, ActionSpec>, action: string, drop: string[]): void {
  const spec = actions[action];
  if (!spec?.input?.properties) return;
  const input: DataSchema = structuredClone(spec.input);
  for (const name of drop) delete input.properties?.[name];
  actions[action] = { ...spec, input };
}

/** The range of values a device says it takes, in the vocabulary's unit; an end left out is the vocabulary's. */
interface DeviceRange {
  minimum?: number;
  maximum?: number;
}

/** A limit as Home Assistant reads it (vol.Coerce(float)): a number, or a number written as text. */
function limitOption(config: Json, key: string): number | undefined {
  const value = config[key];
  const n = typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' ? Number(value) : NaN;
  return Number.isFinite(n) ? n : undefined;
}

/**
 * A device's range, kept inside `envelope` (what the quantity can be at all, so a hostile or
 * mistyped config cannot claim a 10⁹ °C set point), or undefined when it gives none, or gives
 * one whose ends cross: that is not its real range, and the vocabulary's stays.
 */
function deviceRange(low: number | undefined, high: number | undefined, envelope: DataSchema): DeviceRange | undefined {
  const clamp = (n: number | undefined) =>
    n === undefined ? undefined : Math.min(envelope.maximum ?? n, Math.max(envelope.minimum ?? n, n));
  const minimum = clamp(low);
  const maximum = clamp(high);
  if (minimum === undefined && maximum === undefined) return undefined;
  if (minimum !== undefined && maximum !== undefined && minimum > maximum) return undefined;
  return { ...(minimum === undefined ? {} : { minimum }), ...(maximum === undefined ? {} : { maximum }) };
}

/**
 * Gives an action's input field, and the property it sets, the device's own range. Checked there
 * by the hub, a value the device would clamp or ignore is refused before anything is sent, rather
 * than accepted and left to expire unconfirmed; and the property takes what the action takes, so
 * whatever a command may ask for, the device may report.
 */
function applyDeviceRange(
  offer: Offer,
  target: { action: string; field: string; property: string },
  range: DeviceRange | undefined,
): void {
  if (!range) return;
  const spec = offer.actions[target.action];
  const field = spec?.input?.properties?.[target.field];
  if (spec?.input && field) {
    const input: DataSchema = structuredClone(spec.input);
    input.properties = { ...input.properties, [target.field]: withRange(field, range) };
    offer.actions[target.action] = { ...spec, input };
  }
  const property = offer.properties[target.property];
  if (property) offer.properties[target.property] = { ...property, schema: withRange(property.schema, range) };
}

/**
 * A copy of `schema` (the vocabulary's is shared by every thing) with the device's range; the
 * schema as it was when one end the device gives crosses the vocabulary's other end (a lone
 * max_temp of 3 °C against its 5 °C), which would refuse every value.
 */
function withRange(schema: DataSchema, range: DeviceRange): DataSchema {
  const ranged = { ...schema, ...range };
  const crossed = ranged.minimum !== undefined && ranged.maximum !== undefined && ranged.minimum > ranged.maximum;
  return crossed ? schema : ranged;
}

const switchBehaviour: ComponentBehaviour = {
  check: (config) => needsOneOf(config, ['state_topic', 'command_topic'], 'switch'),
  offer: (config) => ({
    properties: vocabularyProperties(['switch.on']),
    actions: textOption(config, 'command_topic') ? vocabularyActions('switch') : {},
  }),
  readers(config, value) {
    const topic = textOption(config, 'state_topic');
    if (!topic) return [];
    const on = payloadText(config, 'state_on', payloadText(config, 'payload_on', 'ON'));
    const off = payloadText(config, 'state_off', payloadText(config, 'payload_off', 'OFF'));
    return [{ topic, read: (m) => [['switch.on', onOff(value(m, 'value_template'), on, off)]] }];
  },
  command(action, _input, tools) {
    const { config, objectId } = tools;
    const topic = requireTopic(config, 'command_topic', objectId, action);
    const turnOn = action === 'toggle' ? tools.current('switch.on') !== true : action === 'turn_on';
    if (!['turn_on', 'turn_off', 'toggle'].includes(action)) unsupported(objectId, action);
    const text = turnOn ? payloadText(config, 'payload_on', 'ON') : payloadText(config, 'payload_off', 'OFF');
    return [{ topic, payload: tools.payload('command_template', { value: text }, text) }];
  },
};

/** Which optional light features a config turns on, for both the default and the JSON schema. */
function lightFeatures(config: Json): { brightness: boolean; colorTemp: boolean; json: boolean } {
  const json = config.schema === 'json';
  const modes = Array.isArray(config.supported_color_modes) ? config.supported_color_modes : [];
  if (json) {
    return {
      json,
      brightness: config.brightness === true,
      colorTemp: config.color_temp === true || modes.includes('color_temp'),
    };
  }
  return {
    json,
    brightness: Boolean(textOption(config, 'brightness_command_topic') || textOption(config, 'brightness_state_topic')),
    colorTemp: Boolean(textOption(config, 'color_temp_command_topic') || textOption(config, 'color_temp_state_topic')),
  };
}

function lightColorTempToKelvin(config: Json, raw: number): number | undefined {
  return config.color_temp_kelvin === true ? Math.round(raw) : miredsToKelvin(raw);
}

function lightColorTempFromKelvin(config: Json, kelvin: number): number {
  return config.color_temp_kelvin === true ? Math.round(kelvin) : kelvinToMireds(kelvin);
}

/**
 * The bulb's colour temperatures in Kelvin, warmest first. As Home Assistant reads them, mireds
 * (the larger the warmer) win over Kelvin when a config has both, whichever unit its state and
 * commands use; each is converted as a state in that unit is, so a bulb at its limit reads as
 * the limit.
 */
function lightColorTempRange(config: Json): DeviceRange | undefined {
  const maxMireds = limitOption(config, 'max_mireds');
  const minMireds = limitOption(config, 'min_mireds');
  const warmest = maxMireds === undefined ? limitOption(config, 'min_kelvin') : miredsToKelvin(maxMireds);
  const coolest = minMireds === undefined ? limitOption(config, 'max_kelvin') : miredsToKelvin(minMireds);
  return deviceRange(warmest, coolest, propertySchema('light.color_temp') ?? {});
}

function lightDefaultReaders(config: Json, value: ValueReader): StateReader[] {
  const readers: StateReader[] = [];
  const stateTopic = textOption(config, 'state_topic');
  const scale = numberOption(config, 'brightness_scale', 255);
  if (stateTopic) {
    const on = payloadText(config, 'payload_on', 'ON');
    const off = payloadText(config, 'payload_off', 'OFF');
    readers.push({ topic: stateTopic, read: (m) => [['light.on', onOff(value(m, 'state_value_template'), on, off)]] });
  }
  const brightnessTopic = textOption(config, 'brightness_state_topic');
  if (brightnessTopic) {
    readers.push({
      topic: brightnessTopic,
      read: (m) => {
        const raw = numberFrom(value(m, 'brightness_value_template'));
        return [['light.brightness', raw === undefined ? undefined : toPercent(raw, 0, scale)]];
      },
    });
  }
  const colorTempTopic = textOption(config, 'color_temp_state_topic');
  if (colorTempTopic) {
    readers.push({
      topic: colorTempTopic,
      read: (m) => {
        const raw = numberFrom(value(m, 'color_temp_value_template'));
        return [['light.color_temp', raw === undefined ? undefined : lightColorTempToKelvin(config, raw)]];
      },
    });
  }
  return readers;
}

/** A JSON-schema light's state: `{"state":"ON","brightness":254,"color_temp":370}`. */
function lightJsonReaders(config: Json): StateReader[] {
  const topic = textOption(config, 'state_topic');
  if (!topic) return [];
  const features = lightFeatures(config);
  const scale = numberOption(config, 'brightness_scale', 255);
  return [
    {
      topic,
      read: ({ json }) => {
        if (!isRecord(json)) return [];
        const out: Array<[string, unknown]> = [];
        if (json.state === 'ON' || json.state === 'OFF') out.push(['light.on', json.state === 'ON']);
        const brightness = numberFrom(json.brightness);
        if (features.brightness && brightness !== undefined)
          out.push(['light.brightness', toPercent(brightness, 0, scale)]);
        const colorTemp = numberFrom(json.color_temp);
        if (features.colorTemp && colorTemp !== undefined) {
          out.push(['light.color_temp', lightColorTempToKelvin(config, colorTemp)]);
        }
        return out;
      },
    },
  ];
}

function lightJsonCommand(
  action: string,
  input: Record<string, unknown>,
  tools: CommandTools,
  on: boolean,
): Outgoing[] {
  const { config, objectId } = tools;
  const topic = requireTopic(config, 'command_topic', objectId, action);
  const body: Json = { state: on ? 'ON' : 'OFF' };
  if (on && typeof input.brightness === 'number') {
    body.brightness = fromPercent(input.brightness, 0, numberOption(config, 'brightness_scale', 255));
  }
  if (on && typeof input.color_temp === 'number') body.color_temp = lightColorTempFromKelvin(config, input.color_temp);
  return [{ topic, payload: JSON.stringify(body) }];
}

/** Default-schema lights take on/off, brightness and colour temperature on separate topics. */
function lightDefaultCommand(
  action: string,
  input: Record<string, unknown>,
  tools: CommandTools,
  on: boolean,
): Outgoing[] {
  const { config, objectId } = tools;
  const topic = requireTopic(config, 'command_topic', objectId, action);
  const power = on ? payloadText(config, 'payload_on', 'ON') : payloadText(config, 'payload_off', 'OFF');
  const powerMessage = { topic, payload: power };
  if (!on) return [powerMessage];
  const extras: Outgoing[] = [];
  const scale = numberOption(config, 'brightness_scale', 255);
  const onCommandType = textOption(config, 'on_command_type') ?? 'last';
  let brightness = typeof input.brightness === 'number' ? fromPercent(input.brightness, 0, scale) : undefined;
  // In "brightness" mode the device has no on payload: turning on means sending a brightness.
  if (onCommandType === 'brightness' && brightness === undefined) brightness = scale;
  if (brightness !== undefined) {
    const bt = requireTopic(config, 'brightness_command_topic', objectId, 'set brightness');
    extras.push({
      topic: bt,
      payload: tools.payload('brightness_command_template', { value: brightness, brightness }, String(brightness)),
    });
  }
  if (typeof input.color_temp === 'number') {
    const ct = requireTopic(config, 'color_temp_command_topic', objectId, 'set colour temperature');
    const raw = lightColorTempFromKelvin(config, input.color_temp);
    extras.push({
      topic: ct,
      payload: tools.payload('color_temp_command_template', { value: raw, color_temp: raw }, String(raw)),
    });
  }
  if (onCommandType === 'brightness') return extras;
  return onCommandType === 'first' ? [powerMessage, ...extras] : [...extras, powerMessage];
}

const lightBehaviour: ComponentBehaviour = {
  check(config) {
    const schema = config.schema ?? 'default';
    if (schema !== 'default' && schema !== 'basic' && schema !== 'json') {
      return `light schema ${JSON.stringify(schema)} is not supported (use "default" or "json")`;
    }
    return needsOneOf(config, ['command_topic'], 'light');
  },
  offer(config) {
    const features = lightFeatures(config);
    const names = ['light.on'];
    if (features.brightness) names.push('light.brightness');
    if (features.colorTemp) names.push('light.color_temp');
    const actions = textOption(config, 'command_topic') ? vocabularyActions('light') : {};
    const drop = [...(features.brightness ? [] : ['brightness']), ...(features.colorTemp ? [] : ['color_temp'])];
    narrowInput(actions, 'turn_on', drop);
    const offer = { properties: vocabularyProperties(names), actions };
    if (features.colorTemp) {
      applyDeviceRange(
        offer,
        { action: 'turn_on', field: 'color_temp', property: 'light.color_temp' },
        lightColorTempRange(config),
      );
    }
    return offer;
  },
  readers: (config, value) =>
    lightFeatures(config).json ? lightJsonReaders(config) : lightDefaultReaders(config, value),
  command(action, input, tools) {
    if (!['turn_on', 'turn_off', 'toggle'].includes(action)) unsupported(tools.objectId, action);
    const features = lightFeatures(tools.config);
    if (input.brightness !== undefined && !features.brightness) throw new Error(`${tools.objectId} cannot dim`);
    if (input.color_temp !== undefined && !features.colorTemp) {
      throw new Error(`${tools.objectId} has no colour temperature control`);
    }
    const on = action === 'toggle' ? tools.current('light.on') !== true : action === 'turn_on';
    return features.json ? lightJsonCommand(action, input, tools, on) : lightDefaultCommand(action, input, tools, on);
  },
};

/** How a sensor's device class and unit land in the vocabulary, or as its own property. */
function sensorProperty(
  config: Json,
  objectId: string,
): { role: string; spec: PropertySpec; convert(n: number): number | undefined } {
  const deviceClass = textOption(config, 'device_class');
  const unit = textOption(config, 'unit_of_measurement');
  const known = deviceClass && Object.hasOwn(SENSOR_UNITS, deviceClass) ? SENSOR_UNITS[deviceClass] : undefined;
  if (known) {
    const { factors } = known;
    if (factors === 'temperature' && toCelsius(0, unit) !== undefined) {
      return {
        role: known.property,
        spec: vocabularyProperties([known.property])[known.property],
        convert: (n) => toCelsius(n, unit),
      };
    }
    const unitFits = (f: Record<string, number>) => (unit === undefined ? !known.unitRequired : Object.hasOwn(f, unit));
    if (factors !== 'temperature' && unitFits(factors)) {
      const factor = unit === undefined ? 1 : factors[unit];
      return {
        role: known.property,
        spec: vocabularyProperties([known.property])[known.property],
        convert: (n) => roundTo(n * factor, 6),
      };
    }
  }
  // Anything else keeps the device's own unit under a property named after the entity.
  const numeric = unit !== undefined || config.state_class !== undefined || known !== undefined;
  const schema: DataSchema = numeric
    ? { type: 'number', ...(unit ? { unit } : {}) }
    : { type: 'string', maxLength: 255 };
  return { role: customSensorName(objectId), spec: { schema }, convert: (n) => n };
}

/** A sensor's own property, kept clear of vocabulary names so it never fakes their unit. */
function customSensorName(objectId: string): string {
  const name = `sensor.${snakeName(objectId)}`;
  return propertySchema(name) ? `${name}_value` : name;
}

const sensorBehaviour: ComponentBehaviour = {
  check: (config) => needsOneOf(config, ['state_topic'], 'sensor'),
  offer(config, objectId) {
    const { role, spec } = sensorProperty(config, objectId);
    return { properties: { [role]: spec }, actions: {} };
  },
  readers(config, value, objectId) {
    const { role, spec, convert } = sensorProperty(config, objectId);
    const topic = textOption(config, 'state_topic') as string;
    return [
      {
        topic,
        read: (m) => {
          const raw = value(m, 'value_template');
          if (spec.schema.type !== 'number') {
            const text = raw === undefined ? '' : templateText(raw);
            return [[role, NO_VALUE_TEXTS.has(text) ? undefined : text]];
          }
          const n = numberFrom(raw);
          return [[role, n === undefined ? undefined : convert(n)]];
        },
      },
    ];
  },
  command: (action, _input, { objectId }) => unsupported(objectId, action),
};

const CONTACT_CLASSES = new Set(['door', 'window', 'opening', 'garage_door']);
const MOTION_CLASSES = new Set(['motion', 'occupancy', 'presence']);

/**
 * Home Assistant's door sensor is ON when open; Triad's `sensor.contact` follows Zigbee2MQTT,
 * where contact `true` means the contact is made: closed.
 */
function binarySensorProperty(config: Json, objectId: string): { role: string; invert: boolean } {
  const deviceClass = textOption(config, 'device_class') ?? '';
  if (CONTACT_CLASSES.has(deviceClass)) return { role: 'sensor.contact', invert: true };
  if (MOTION_CLASSES.has(deviceClass)) return { role: 'sensor.motion', invert: false };
  return { role: customSensorName(objectId), invert: false };
}

const binarySensorBehaviour: ComponentBehaviour = {
  check: (config) => needsOneOf(config, ['state_topic'], 'binary_sensor'),
  offer(config, objectId) {
    return {
      properties: { [binarySensorProperty(config, objectId).role]: { schema: { type: 'boolean' } } },
      actions: {},
    };
  },
  readers(config, value, objectId) {
    const { role, invert } = binarySensorProperty(config, objectId);
    const on = payloadText(config, 'payload_on', 'ON');
    const off = payloadText(config, 'payload_off', 'OFF');
    const topic = textOption(config, 'state_topic') as string;
    return [
      {
        topic,
        read: (m) => {
          const state = onOff(value(m, 'value_template'), on, off);
          return [[role, state === undefined ? undefined : state !== invert]];
        },
      },
    ];
  },
  command: (action, _input, { objectId }) => unsupported(objectId, action),
};

const lockBehaviour: ComponentBehaviour = {
  check: (config) => needsOneOf(config, ['command_topic'], 'lock'),
  // A jammed lock (Home Assistant's `state_jammed`) is neither locked nor unlocked: it is its own
  // `lock.jammed`, so a user sees it and a rule can trigger on it, and `lock.locked` keeps what the
  // lock last said rather than reading as unlocked. Only a lock that reports its state can say it.
  offer: (config) => ({
    properties: vocabularyProperties(
      textOption(config, 'state_topic') ? ['lock.locked', 'lock.jammed'] : ['lock.locked'],
    ),
    actions: vocabularyActions('lock'),
  }),
  readers(config, value) {
    const topic = textOption(config, 'state_topic');
    if (!topic) return [];
    const locked = payloadText(config, 'state_locked', 'LOCKED');
    const unlocked = payloadText(config, 'state_unlocked', 'UNLOCKED');
    const jammed = payloadText(config, 'state_jammed', 'JAMMED');
    // Home Assistant's other lock states: each says the bolt moves (or moved) again, so the jam is
    // over; `lock.locked` changes only once the lock says where it ended, except that open is
    // unlocked.
    const moving = new Set(
      [
        payloadText(config, 'state_locking', 'LOCKING'),
        payloadText(config, 'state_unlocking', 'UNLOCKING'),
        payloadText(config, 'state_opening', 'OPENING'),
      ].filter((text) => text !== locked && text !== unlocked && text !== jammed),
    );
    const open = payloadText(config, 'state_open', 'OPEN');
    return [
      {
        topic,
        read: (m) => {
          const raw = value(m, 'value_template');
          const text = raw === undefined ? undefined : templateText(raw);
          if (text === jammed) return [['lock.jammed', true]];
          if (text !== undefined && moving.has(text)) return [['lock.jammed', false]];
          if (text === open && open !== locked)
            return [
              ['lock.locked', false],
              ['lock.jammed', false],
            ];
          const state = onOff(raw, locked, unlocked);
          return [
            ['lock.locked', state],
            ['lock.jammed', state === undefined ? undefined : false],
          ];
        },
      },
    ];
  },
  command(action, _input, tools) {
    const { config, objectId } = tools;
    const topic = requireTopic(config, 'command_topic', objectId, action);
    if (action !== 'lock' && action !== 'unlock') unsupported(objectId, action);
    const text =
      action === 'lock' ? payloadText(config, 'payload_lock', 'LOCK') : payloadText(config, 'payload_unlock', 'UNLOCK');
    return [{ topic, payload: tools.payload('command_template', { value: text, code: null }, text) }];
  },
};

const DEFAULT_CLIMATE_MODES = ['auto', 'off', 'cool', 'heat', 'dry', 'fan_only'];
const TRIAD_CLIMATE_MODES = ['off', 'heat', 'cool', 'auto'];

function climateModes(config: Json): string[] {
  return Array.isArray(config.modes)
    ? config.modes.filter((m): m is string => typeof m === 'string')
    : DEFAULT_CLIMATE_MODES;
}

/** The device's mode for a Triad mode; `heat_cool` is what most thermostats call auto. */
function deviceMode(mode: string, modes: string[]): string | undefined {
  if (modes.includes(mode)) return mode;
  return mode === 'auto' && modes.includes('heat_cool') ? 'heat_cool' : undefined;
}

function triadMode(mode: string, modes: string[]): string | undefined {
  if (TRIAD_CLIMATE_MODES.includes(mode)) return mode;
  return mode === 'heat_cool' && !modes.includes('auto') ? 'auto' : undefined;
}

/**
 * The set points a thermostat takes, in °C as the action takes them: min_temp and max_temp are in
 * the device's temperature_unit, and are converted as its reported set point is, so a device at
 * its own limit reads as the limit. Kept within what a temperature can be at all (sensor.temperature).
 */
function climateTargetRange(config: Json): DeviceRange | undefined {
  const unit = textOption(config, 'temperature_unit');
  const inCelsius = (key: string) => {
    const limit = limitOption(config, key);
    return limit === undefined ? undefined : toCelsius(limit, unit);
  };
  return deviceRange(inCelsius('min_temp'), inCelsius('max_temp'), propertySchema('sensor.temperature') ?? {});
}

const climateBehaviour: ComponentBehaviour = {
  check: (config) =>
    needsOneOf(
      config,
      [
        'mode_state_topic',
        'mode_command_topic',
        'temperature_state_topic',
        'temperature_command_topic',
        'current_temperature_topic',
      ],
      'climate',
    ),
  offer(config) {
    const names: string[] = [];
    const actions: string[] = [];
    if (textOption(config, 'mode_state_topic') || textOption(config, 'mode_command_topic')) names.push('climate.mode');
    if (textOption(config, 'current_temperature_topic')) names.push('climate.current_temperature');
    if (textOption(config, 'temperature_state_topic') || textOption(config, 'temperature_command_topic')) {
      names.push('climate.target_temperature');
    }
    if (textOption(config, 'mode_command_topic')) actions.push('set_mode');
    if (textOption(config, 'temperature_command_topic')) actions.push('set_target_temperature');
    const offered = actions.length ? vocabularyActions('climate', actions) : {};
    if (offered.set_mode?.input) {
      const modes = climateModes(config);
      const input = structuredClone(offered.set_mode.input);
      const mode = input.properties?.mode;
      if (mode) mode.enum = TRIAD_CLIMATE_MODES.filter((m) => deviceMode(m, modes) !== undefined);
      offered.set_mode = { ...offered.set_mode, input };
    }
    const offer = { properties: vocabularyProperties(names), actions: offered };
    applyDeviceRange(
      offer,
      { action: 'set_target_temperature', field: 'temperature', property: 'climate.target_temperature' },
      climateTargetRange(config),
    );
    return offer;
  },
  readers(config, value) {
    const unit = textOption(config, 'temperature_unit');
    const modes = climateModes(config);
    const readers: StateReader[] = [];
    const add = (topicKey: string, templateKey: string, role: string, convert: (v: unknown) => unknown) => {
      const topic = textOption(config, topicKey);
      if (topic) readers.push({ topic, read: (m) => [[role, convert(value(m, templateKey))]] });
    };
    const celsius = (v: unknown) => {
      const n = numberFrom(v);
      return n === undefined ? undefined : toCelsius(n, unit);
    };
    add('mode_state_topic', 'mode_state_template', 'climate.mode', (v) =>
      v === undefined ? undefined : triadMode(templateText(v), modes),
    );
    add('temperature_state_topic', 'temperature_state_template', 'climate.target_temperature', celsius);
    add('current_temperature_topic', 'current_temperature_template', 'climate.current_temperature', celsius);
    return readers;
  },
  command(action, input, tools) {
    const { config, objectId } = tools;
    if (action === 'set_mode') {
      const topic = requireTopic(config, 'mode_command_topic', objectId, action);
      const mode = typeof input.mode === 'string' ? deviceMode(input.mode, climateModes(config)) : undefined;
      if (!mode) throw new Error(`${objectId} has no mode ${JSON.stringify(input.mode)}`);
      return [{ topic, payload: tools.payload('mode_command_template', { value: mode }, mode) }];
    }
    if (action === 'set_target_temperature') {
      const topic = requireTopic(config, 'temperature_command_topic', objectId, action);
      if (typeof input.temperature !== 'number') throw new Error('set_target_temperature needs a temperature');
      const value = fromCelsius(input.temperature, textOption(config, 'temperature_unit'));
      return [{ topic, payload: tools.payload('temperature_command_template', { value }, String(value)) }];
    }
    return unsupported(objectId, action);
  },
};

function coverRange(config: Json): { closed: number; open: number } {
  return { closed: numberOption(config, 'position_closed', 0), open: numberOption(config, 'position_open', 100) };
}

const coverBehaviour: ComponentBehaviour = {
  check: (config) =>
    needsOneOf(config, ['command_topic', 'set_position_topic', 'position_topic', 'state_topic'], 'cover'),
  offer(config) {
    const actions: string[] = [];
    if (textOption(config, 'command_topic') || textOption(config, 'set_position_topic')) actions.push('open', 'close');
    if (textOption(config, 'set_position_topic')) actions.push('set_position');
    return {
      properties: vocabularyProperties(['cover.position']),
      actions: actions.length ? vocabularyActions('cover', actions) : {},
    };
  },
  readers(config, value) {
    const { closed, open } = coverRange(config);
    const positionTopic = textOption(config, 'position_topic');
    if (positionTopic) {
      return [
        {
          topic: positionTopic,
          read: (m) => {
            const raw = numberFrom(value(m, 'position_template'));
            return [['cover.position', raw === undefined ? undefined : toPercent(raw, closed, open)]];
          },
        },
      ];
    }
    // Without a position topic, "open" and "closed" are the only positions the cover reports.
    const stateTopic = textOption(config, 'state_topic');
    if (!stateTopic) return [];
    const openText = payloadText(config, 'state_open', 'open');
    const closedText = payloadText(config, 'state_closed', 'closed');
    return [
      {
        topic: stateTopic,
        read: (m) => {
          const state = onOff(value(m, 'value_template'), openText, closedText);
          return [['cover.position', state === undefined ? undefined : state ? 100 : 0]];
        },
      },
    ];
  },
  command(action, input, tools) {
    const { config, objectId } = tools;
    const { closed, open } = coverRange(config);
    const setPosition = (position: number): Outgoing[] => {
      const topic = requireTopic(config, 'set_position_topic', objectId, action);
      return [
        { topic, payload: tools.payload('set_position_template', { value: position, position }, String(position)) },
      ];
    };
    if (action === 'set_position') {
      if (typeof input.position !== 'number') throw new Error('set_position needs a position');
      return setPosition(fromPercent(input.position, closed, open));
    }
    if (action !== 'open' && action !== 'close') return unsupported(objectId, action);
    const commandTopic = textOption(config, 'command_topic');
    if (!commandTopic) return setPosition(action === 'open' ? open : closed);
    const key = action === 'open' ? 'payload_open' : 'payload_close';
    if (config[key] === null) throw new Error(`${objectId} has ${key} disabled`);
    const text = payloadText(config, key, action === 'open' ? 'OPEN' : 'CLOSE');
    return [{ topic: commandTopic, payload: tools.payload('command_template', { value: text }, text) }];
  },
};

const BEHAVIOURS: Record<Component, ComponentBehaviour> = {
  switch: switchBehaviour,
  light: lightBehaviour,
  sensor: sensorBehaviour,
  binary_sensor: binarySensorBehaviour,
  lock: lockBehaviour,
  climate: climateBehaviour,
  cover: coverBehaviour,
};

/** Read-only components may be renamed to fit beside a sibling; actuators get their own thing. */
const READ_ONLY: ReadonlySet<Component> = new Set(['sensor', 'binary_sensor']);

// ---------------------------------------------------------------------------------------------
// Availability

interface AvailabilitySource {
  topic: string;
  available: string;
  notAvailable: string;
  template?: string;
}

function availabilitySources(config: Json): AvailabilitySource[] {
  const sources: AvailabilitySource[] = [];
  const add = (item: Json, templateKey: string) => {
    const topic = textOption(item, 'topic');
    if (!topic) return;
    const template = textOption(item, templateKey);
    sources.push({
      topic,
      available: payloadText(item, 'payload_available', 'online'),
      notAvailable: payloadText(item, 'payload_not_available', 'offline'),
      ...(template ? { template } : {}),
    });
  };
  const single = textOption(config, 'availability_topic');
  if (single) add({ ...config, topic: single }, 'availability_template');
  if (Array.isArray(config.availability)) {
    for (const item of config.availability) if (isRecord(item)) add(item, 'value_template');
  }
  return sources;
}

/** What an entity has heard on its availability topics. */
interface AvailabilityState {
  mode: 'all' | 'any' | 'latest';
  heard: Map<string, boolean>;
  latest?: boolean;
}

/** Home Assistant's rule: `all` and `any` count a silent topic as unavailable; `latest` trusts the last word. */
function entityAvailable(state: AvailabilityState, sources: AvailabilitySource[]): boolean | undefined {
  if (state.latest === undefined) return undefined;
  if (state.mode === 'latest') return state.latest;
  const values = sources.map((s) => state.heard.get(s.topic) === true);
  return state.mode === 'all' ? values.every(Boolean) : values.some(Boolean);
}

// ---------------------------------------------------------------------------------------------
// State topics

/** `retained`: a message the broker kept from before (or the router's last one, to a late handler). */
type PayloadHandler = (topic: string, payload: Buffer, retained: boolean) => void;

interface Route {
  handlers: Set<PayloadHandler>;
  /** The topic's last message (two fields rather than an object, so a report allocates none). */
  lastTopic?: string;
  lastPayload?: Buffer;
  subscription: Promise<() => Promise<void>>;
  /** The highest QoS an entity reading the topic asked for, the one the broker was asked for. */
  qos: MqttQos;
}

/**
 * One broker subscription per state topic, shared by every entity that reads it. The broker
 * replays a retained state only to a new subscription, so the router keeps each topic's last
 * message and hands it to an entity that joins later (a Zigbee2MQTT bulb's light and its
 * linkquality sensor read the same topic).
 */
class TopicRouter {
  private readonly routes = new Map<string, Route>();

  constructor(private readonly link: MqttLink) {}

  /**
   * Subscribes to `topic` for a handler still to come, keeping its last message meanwhile (add
   * hands it over); returns the function that lets go, which unsubscribes if no handler came.
   */
  hold(topic: string, qos: MqttQos = 0): Promise<() => Promise<void>> {
    // A handler of its own: the handlers are a set, and two holds on one topic are two members.
    return this.add(topic, () => {}, qos);
  }

  /** Adds a handler for `topic`, read at `qos` at least; returns the function that removes it. */
  async add(topic: string, handler: PayloadHandler, qos: MqttQos = 0): Promise<() => Promise<void>> {
    let route = this.routes.get(topic);
    if (!route) {
      const created: Route = { handlers: new Set(), subscription: Promise.resolve(async () => {}), qos };
      created.subscription = this.link.subscribe(
        topic,
        (actual, payload, meta) => {
          created.lastTopic = actual;
          created.lastPayload = payload;
          for (const each of created.handlers) each(actual, payload, meta.retain);
        },
        { qos },
      );
      route = created;
      this.routes.set(topic, route);
    } else {
      if (qos > route.qos) {
        // An entity asking for more than the topic is read at: the link subscribes again at its
        // QoS (with a handler that does nothing), and letting the route go lets that go too. A
        // broker that refuses the higher QoS still delivers at the one it has: read at that.
        route.qos = qos;
        const raised = this.link.subscribe(topic, () => {}, { qos }).catch(() => async () => {});
        route.subscription = Promise.all([route.subscription, raised]).then(([first, second]) => async () => {
          await second();
          await first();
        });
      }
      if (route.lastTopic !== undefined && route.lastPayload) handler(route.lastTopic, route.lastPayload, true);
    }
    route.handlers.add(handler);
    const joined = route;
    try {
      await joined.subscription;
    } catch (error) {
      joined.handlers.delete(handler);
      if (this.routes.get(topic) === joined && joined.handlers.size === 0) this.routes.delete(topic);
      throw error;
    }
    return async () => {
      joined.handlers.delete(handler);
      if (joined.handlers.size > 0 || this.routes.get(topic) !== joined) return;
      this.routes.delete(topic);
      const unsubscribe = await joined.subscription;
      await unsubscribe();
    };
  }
}

// ---------------------------------------------------------------------------------------------
// The adapter

interface LiveEntity {
  draft: EntityDraft;
  groupKey: string;
  record?: DiscoveredEntity;
  thingId?: string;
  unsubscribers: Array<() => Promise<void>>;
  availability: AvailabilityState;
}

interface PlannedThing {
  claimant: string;
  preferredId: string;
  name: string;
  /** The device as all its entities describe it together (see deviceOf). */
  device?: DeviceInfo;
  entities: LiveEntity[];
  properties: Record<string, PropertySpec>;
  actions: Record<string, ActionSpec>;
}

/** The templates this adapter evaluates; others in a config are left alone. */
const USED_TEMPLATES = new Set([
  'value_template',
  'state_value_template',
  'brightness_value_template',
  'color_temp_value_template',
  'command_template',
  'brightness_command_template',
  'color_temp_command_template',
  'mode_state_template',
  'mode_command_template',
  'temperature_state_template',
  'temperature_command_template',
  'current_temperature_template',
  'position_template',
  'set_position_template',
  'availability_template',
]);

export class HomeAssistantDiscovery implements Adapter {
  readonly name = 'mqtt';
  private readonly prefix: string;
  private ctx: AdapterContext | null = null;
  private log: Logger | null = null;
  private readonly entities = new Map<string, LiveEntity>();
  /** Entity keys announced by each config topic (a device-based config announces several). */
  private readonly sources = new Map<string, string[]>();
  private readonly lastConfigText = new Map<string, string>();
  /** The thing ids each group produced last time, so stale ones can be removed. */
  private readonly groupThings = new Map<string, string[]>();
  /** Which claimant (device or entity) holds each thing id, and the id each claimant was given. */
  private readonly idOwners = new Map<string, string>();
  private readonly claims = new Map<string, { preferred: string; id: string }>();
  private readonly reportedAvailability = new Map<string, boolean>();
  private readonly templates = new Map<string, CompiledTemplate | TemplateError>();
  /** The state message parsed last, by payload buffer, for the next entity on the same topic. */
  private lastPayload: Buffer | undefined;
  /** When each entity's last unreadable state was logged (see notUnderstood). */
  private readonly notUnderstoodAt = new Map<string, number>();
  /**
   * The entity templates (entity key and template key) already logged as making too long a text:
   * such a template fails the same way on every message, so it is logged once, not per message.
   */
  private readonly tooLongLogged = new Set<string>();
  private lastMessage: StateMessage | undefined;
  private readonly router: TopicRouter;
  private discoveryUnsubscribers: Array<() => Promise<void>> = [];
  /** Config messages are applied one at a time, in arrival order. */
  private work: Promise<void> = Promise.resolve();
  /**
   * Config topics applied since start: from then on what a topic says (its entities, or an empty
   * config) is the word on it, and an entity a stored thing had from it is not put back.
   */
  private readonly heardTopics = new Set<string>();
  /** Stored things whose entities were looked at already since start (see restoreStored). */
  private readonly restoredThings = new Set<string>();
  /** Entities put back from a stored thing, to read their state topics once their thing is saved. */
  private restoredToSubscribe: LiveEntity[] = [];

  constructor(private readonly options: HomeAssistantDiscoveryOptions) {
    this.prefix = (options.prefix ?? 'homeassistant').replace(/\/+$/, '');
    this.router = new TopicRouter(options.link);
  }

  async start(ctx: AdapterContext): Promise<void> {
    this.ctx = ctx;
    this.log = ctx.log.child('discovery');
    const onConfig = (topic: string, payload: Buffer) => {
      // Asked as the config arrives, not once its turn comes: the topic may be published again meanwhile.
      const announcer = this.options.announcer?.(topic);
      this.work = this.work
        .then(() => this.handleConfig(topic, payload, announcer))
        .catch((error: unknown) => {
          this.log?.error(`discovery config on ${topic} failed: ${errorText(error)}`, { topic });
        });
    };
    for (const filter of [`${this.prefix}/+/+/config`, `${this.prefix}/+/+/+/config`]) {
      this.discoveryUnsubscribers.push(await this.options.link.subscribe(filter, onConfig));
    }
  }

  /** Stops listening; the things stay in the hub, and a later start() finds them by their claimant. */
  async stop(): Promise<void> {
    const discovery = this.discoveryUnsubscribers;
    this.discoveryUnsubscribers = [];
    await Promise.allSettled(discovery.map((unsubscribe) => unsubscribe()));
    // Configs already received finish first, so none subscribes after the sweep below.
    await this.idle();
    const entities = [...this.entities.values()];
    await Promise.allSettled(entities.flatMap((e) => e.unsubscribers.map((unsubscribe) => unsubscribe())));
    for (const state of [this.entities, this.sources, this.lastConfigText, this.groupThings, this.idOwners]) {
      state.clear();
    }
    this.heardTopics.clear();
    this.restoredThings.clear();
    this.restoredToSubscribe = [];
    this.claims.clear();
    this.reportedAvailability.clear();
    this.ctx = null;
  }

  /**
   * Resolves once every config received so far is applied: things saved and their state topics
   * subscribed. The hub can wait on it after start-up so retained configs are in before it serves.
   */
  async idle(): Promise<void> {
    let seen: Promise<void> | undefined;
    while (seen !== this.work) {
      seen = this.work;
      await seen;
    }
  }

  async execute(command: Command, thing: Thing): Promise<void> {
    const resolved = resolveAction(thing, command.action);
    if (!resolved) throw new Error(`${thing.name} has no action ${JSON.stringify(command.action)}`);
    const entity = entityForAction(thing, resolved.key);
    if (!entity) throw new Error(`${thing.name}: no discovered entity carries out ${resolved.key}`);
    const tools = new EntityCommandTools(this.requireContext(), thing, entity, this);
    const messages = BEHAVIOURS[entity.component].command(resolved.key, command.input ?? {}, tools);
    const config = entity.config;
    const qos = qosOf(config);
    for (const message of messages) {
      await this.options.link.publish(message.topic, message.payload, { qos, retain: config.retain === true });
    }
  }

  // -- configs ----------------------------------------------------------------------------------

  private async handleConfig(topic: string, payload: Buffer, announcer?: Announcer): Promise<void> {
    if (!this.ctx) return;
    const address = parseDiscoveryTopic(this.prefix, topic);
    if (!address) return;
    if (payload.length > MAX_PAYLOAD_BYTES)
      return this.reject(topic, `${payload.length} bytes is over the 64 KiB limit`);
    const text = payload.toString('utf8');
    if (this.lastConfigText.get(topic) === text) return;
    if (text.trim() === '') {
      this.heardTopics.add(topic);
      // Forgotten only once its things are removed: a removal the store refused leaves it in force.
      if (await this.replaceSource(topic, [])) this.lastConfigText.delete(topic);
      return;
    }
    let parsed: JsonPayload;
    try {
      parsed = new JsonPayload(text);
    } catch (error) {
      return this.reject(topic, `malformed JSON (${errorText(error)})`);
    }
    const raw = parsed.data;
    if (!isRecord(raw)) return this.reject(topic, 'the config must be a JSON object');
    payloadsAsText(parsed, raw, 0);
    const drafts =
      address.component === 'device'
        ? this.readDeviceConfig(topic, address, raw, announcer)
        : this.readEntityConfig(topic, address, raw, announcer);
    if (!drafts) return;
    this.heardTopics.add(topic);
    // Remembered only once its things are saved, and the one before forgotten now that its
    // entities are replaced: the same config sent again after a failed save (the store healthy
    // again, a retained config re-delivered) must be read again, not skipped as unchanged.
    const previous = this.lastConfigText.get(topic);
    this.lastConfigText.delete(topic);
    if (await this.replaceSource(topic, drafts)) this.lastConfigText.set(topic, text);
    // Not taken: the previous config is in force again.
    else if (previous !== undefined) this.lastConfigText.set(topic, previous);
  }

  private readEntityConfig(
    topic: string,
    address: DiscoveryAddress,
    raw: Json,
    announcer?: Announcer,
  ): EntityDraft[] | undefined {
    const config = expandConfig(raw);
    expandBaseTopic(config);
    const draft = this.draftEntity(topic, address.component, address.nodeId, address.objectId, config, announcer);
    if (!draft.ok) {
      this.reject(topic, draft.reason, UNMAPPED_COMPONENTS.has(address.component) ? 'info' : 'warn');
      return undefined;
    }
    return [draft.value];
  }

  /**
   * Device-based discovery: shared options at the top apply to every component. A component
   * given with only its platform is being removed, as Home Assistant's migration path does it.
   */
  private readDeviceConfig(
    topic: string,
    address: DiscoveryAddress,
    raw: Json,
    announcer?: Announcer,
  ): EntityDraft[] | undefined {
    const shared = expandConfig(raw);
    const components = shared.components;
    if (!isRecord(components)) return this.reject(topic, 'a device config needs a "cmps" (components) object');
    if (!isRecord(shared.device)) return this.reject(topic, 'a device config needs a "dev" (device) object');
    delete shared.components;
    const drafts: EntityDraft[] = [];
    let failures = 0;
    for (const [componentId, rawComponent] of Object.entries(components)) {
      if (!isRecord(rawComponent)) {
        failures++;
        this.reject(topic, `component ${componentId} is not an object`);
        continue;
      }
      const own = expandConfig(rawComponent);
      const platform = textOption(own, 'platform');
      if (Object.keys(own).length === 1 && platform) continue;
      const config: Json = { ...shared, ...own };
      expandBaseTopic(config);
      const draft = this.draftEntity(topic, platform ?? '(none)', address.objectId, componentId, config, announcer);
      if (draft.ok) drafts.push(draft.value);
      else {
        failures++;
        this.reject(
          topic,
          `component ${componentId}: ${draft.reason}`,
          platform && UNMAPPED_COMPONENTS.has(platform) ? 'info' : 'warn',
        );
      }
    }
    // A config whose every component is broken changes nothing, like any other bad config.
    return drafts.length === 0 && failures > 0 ? undefined : drafts;
  }

  private draftEntity(
    topic: string,
    component: string,
    nodeId: string | undefined,
    objectId: string,
    config: Json,
    announcer?: Announcer,
  ): Parsed<EntityDraft> {
    if (!isComponent(component)) {
      const why = UNMAPPED_COMPONENTS.has(component)
        ? 'has no Triad mapping yet'
        : 'is not a Home Assistant component Triad knows';
      return { ok: false, reason: `component ${JSON.stringify(component)} ${why}` };
    }
    const problem = topicProblem(config) ?? accountProblem(config, announcer) ?? BEHAVIOURS[component].check(config);
    if (problem) return { ok: false, reason: problem };
    const device = readDevice(config.device);
    const entityConfig = { ...config };
    delete entityConfig.device;
    delete entityConfig.origin;
    delete entityConfig.platform;
    const problems = this.templateProblems(topic, objectId, entityConfig);
    return {
      ok: true,
      value: {
        key: `${component}/${nodeId ? `${nodeId}/` : ''}${objectId}`,
        component,
        configTopic: topic,
        objectId,
        config: entityConfig,
        ...(device ? { device } : {}),
        ...(announcer?.account ? { account: announcer.account } : {}),
        problems,
      },
    };
  }

  /**
   * Compiles every template Triad uses now, so an unsupported one is reported on the entity right
   * away; `warn` false for an entity read back from the store, whose problems were logged when
   * its config came.
   */
  private templateProblems(topic: string, objectId: string, config: Json, warn = true): string[] {
    const problems: string[] = [];
    const check = (key: string, source: unknown) => {
      if (source === undefined || source === null) return;
      const compiled =
        typeof source === 'string' ? this.template(source) : new TemplateError('a template must be a string');
      if (compiled instanceof TemplateError) {
        problems.push(`${objectId}: ${key}: ${compiled.message}`);
        if (warn) this.log?.warn(`unsupported template on ${topic}: ${key}: ${compiled.message}`, { topic, key });
      }
    };
    // Only templates Triad evaluates matter; one for a feature it does not map (an action or
    // attribute template, say) would only be noise.
    for (const [key, value] of Object.entries(config)) if (USED_TEMPLATES.has(key)) check(key, value);
    if (Array.isArray(config.availability)) {
      for (const item of config.availability)
        if (isRecord(item)) check('availability.value_template', item.value_template);
    }
    return problems;
  }

  private template(source: string): CompiledTemplate | TemplateError {
    let compiled = this.templates.get(source);
    if (compiled) return compiled;
    try {
      compiled = compileTemplate(source);
    } catch (error) {
      compiled = error instanceof TemplateError ? error : new TemplateError(errorText(error));
    }
    // A bounded cache: configs reuse a handful of templates, hostile ones must not grow it forever.
    if (this.templates.size >= TEMPLATE_CACHE_LIMIT) this.templates.clear();
    this.templates.set(source, compiled);
    return compiled;
  }

  private reject(topic: string, reason: string, level: 'warn' | 'info' = 'warn'): undefined {
    this.log?.[level](`discovery config on ${topic} ignored: ${reason}`, { topic, reason });
    return undefined;
  }

  /**
   * Swaps the entities a config topic announced for `drafts`, then rebuilds the affected things.
   * Resolves true when every thing was saved and every stale one removed; otherwise the previous
   * entities are put back, still subscribed, and resolves false.
   */
  private async replaceSource(topic: string, drafts: EntityDraft[]): Promise<boolean> {
    const affected = new Set<string>();
    const retired: LiveEntity[] = [];
    /** The config topics' entity keys as they were, to put back if the store refuses the change. */
    const sourcesBefore = new Map<string, string[] | undefined>([[topic, this.sources.get(topic)]]);
    for (const [source, keys] of this.sources)
      if (drafts.some((d) => keys.includes(d.key)) && !sourcesBefore.has(source)) sourcesBefore.set(source, keys);
    const retire = (key: string) => {
      const entity = this.entities.get(key);
      if (!entity) return;
      this.entities.delete(key);
      retired.push(entity);
      affected.add(entity.groupKey);
    };
    for (const key of this.sources.get(topic) ?? []) retire(key);
    const added: LiveEntity[] = [];
    for (const draft of drafts) {
      retire(draft.key);
      this.forgetKeyInOtherSources(draft.key, topic);
      const entity: LiveEntity = {
        draft,
        groupKey: groupKeyOf(draft),
        unsubscribers: [],
        availability: { mode: availabilityMode(draft.config), heard: new Map() },
      };
      this.entities.set(draft.key, entity);
      added.push(entity);
      affected.add(entity.groupKey);
    }
    if (drafts.length)
      this.sources.set(
        topic,
        drafts.map((d) => d.key),
      );
    else this.sources.delete(topic);
    // The new entities' topics are subscribed before their things are saved, which takes a
    // store write: a device that sends its first state straight after its config (as many do,
    // not retained) would otherwise find no subscription. The router keeps what comes meanwhile
    // and hands it to the entity's handler once its thing exists. A state sent before the
    // broker has the subscription is still lost; only the device retaining it, or sending it
    // again, closes that gap (Home Assistant has the same one).
    const holds = added.flatMap((entity) =>
      this.topicsOf(entity).map((topic) => this.router.hold(topic, qosOf(entity.draft.config))),
    );
    try {
      if (await this.rebuildGroups(affected)) {
        // The retired entities read their things until the new ones are saved: until then, the
        // store holds the previous things, and the change may yet be undone.
        await Promise.allSettled(retired.flatMap((e) => e.unsubscribers.map((unsubscribe) => unsubscribe())));
        for (const entity of added) if (entity.thingId) await this.subscribeEntity(entity);
        await this.subscribeRestored();
        return true;
      }
      // The store refused a save or a removal (down, or busy for a moment): a device that worked
      // must not lose its thing, its state and the rules on it for that. The previous entities
      // are put back, and their things saved again, since some of the new ones may have been
      // saved (a device's second thing, or the first of two groups) and the plans recomputed.
      for (const entity of added)
        if (this.entities.get(entity.draft.key) === entity) this.entities.delete(entity.draft.key);
      for (const entity of retired) this.entities.set(entity.draft.key, entity);
      for (const [source, keys] of sourcesBefore) {
        if (keys) this.sources.set(source, keys);
        else this.sources.delete(source);
      }
      await this.rebuildGroups(affected);
      return false;
    } finally {
      // Released once the entities have their own handlers: a topic none of them took is let go.
      for (const hold of await Promise.allSettled(holds))
        if (hold.status === 'fulfilled') await hold.value().catch(() => {});
    }
  }

  /** Reads the state topics of entities put back from the store, once their thing is saved. */
  private async subscribeRestored(): Promise<void> {
    const waiting: LiveEntity[] = [];
    for (const entity of this.restoredToSubscribe) {
      // Replaced by its config meanwhile: the new entity reads the topics.
      if (this.entities.get(entity.draft.key) !== entity) continue;
      if (entity.thingId) await this.subscribeEntity(entity);
      else waiting.push(entity);
    }
    this.restoredToSubscribe = waiting;
  }

  /** The state and availability topics an entity reads. */
  private topicsOf(entity: LiveEntity): string[] {
    const { draft } = entity;
    const readers = BEHAVIOURS[draft.component].readers(draft.config, this.valueReader(entity), draft.objectId);
    return [...readers.map((r) => r.topic), ...availabilitySources(draft.config).map((s) => s.topic)];
  }

  private forgetKeyInOtherSources(key: string, topic: string): void {
    for (const [source, keys] of this.sources) {
      if (source !== topic && keys.includes(key))
        this.sources.set(
          source,
          keys.filter((k) => k !== key),
        );
    }
  }

  // -- things -----------------------------------------------------------------------------------

  /**
   * Saves the affected groups' things, then removes those no group makes any more. Removes
   * nothing unless every save went through: a thing is stale only once what replaces it is
   * saved. Resolves true when every save and removal went through.
   */
  private async rebuildGroups(groupKeys: Iterable<string>): Promise<boolean> {
    const made = new Map<string, string[]>();
    let saved = true;
    for (const groupKey of groupKeys) {
      const ids = await this.saveGroup(groupKey);
      if (ids) made.set(groupKey, ids);
      else saved = false;
    }
    if (!saved) return false;
    let removed = true;
    for (const [groupKey, ids] of made) if (!(await this.removeStale(groupKey, ids))) removed = false;
    return removed;
  }

  /** Saves a group's things; resolves their ids, or undefined when one could not be saved. */
  private async saveGroup(groupKey: string): Promise<string[] | undefined> {
    const ctx = this.requireContext();
    const members = () =>
      [...this.entities.values()]
        .filter((e) => e.groupKey === groupKey)
        .sort((a, b) => (a.draft.key < b.draft.key ? -1 : 1));
    let plans = planThings(groupKey, members());
    // Entities put back change the plan (the device's name and so the thing's id, which entity
    // goes where), and so may reach another stored thing: planned again until none comes back.
    while (this.restoreStored(groupKey, plans)) plans = planThings(groupKey, members());
    const ids: string[] = [];
    let failed = false;
    const orphans: string[] = [];
    for (const plan of plans) {
      const id = this.claimId(plan.claimant, plan.preferredId, plan.entities);
      const orphan = this.orphanOf(plan.claimant, plan.preferredId, id);
      if (orphan) orphans.push(orphan);
      const thing = this.thingFor(id, plan);
      try {
        await ctx.upsertThing(thing);
      } catch (error) {
        this.log?.error(`cannot save thing ${id}: ${errorText(error)}`, { thing: id });
        failed = true;
        continue;
      }
      ids.push(id);
      for (const entity of plan.entities) entity.thingId = id;
    }
    // A thing saved under a new id (the device renamed) starts without availability: what its
    // entities already heard is said again, or it would read unknown until the device next spoke.
    for (const id of ids) this.updateAvailability(id);
    // Known as the group's along with its earlier things until removeStale runs: a thing saved
    // here is stored even if the change is then undone, and a later rebuild removes it.
    const known = this.groupThings.get(groupKey) ?? [];
    const all = [...known, ...[...ids, ...orphans].filter((id) => !known.includes(id))];
    if (all.length) this.groupThings.set(groupKey, all);
    return failed ? undefined : ids;
  }

  /**
   * After a start the broker hands a device's retained configs back one at a time. A thing stored
   * before keeps, meanwhile, the entities whose config topics have not spoken yet since start, as
   * its meta describes them: saved with only the entities heard so far, it lost the others'
   * properties until their configs came, and the rules on them were unloaded and their timers
   * lost. An entity goes only when its topic says so (an empty config, a device config without
   * it), or with its thing. Each stored thing is looked at once; resolves whether any came back.
   */
  private restoreStored(groupKey: string, plans: PlannedThing[]): boolean {
    const ctx = this.requireContext();
    let restored = false;
    for (const plan of plans) {
      const id = this.claimId(plan.claimant, plan.preferredId, plan.entities);
      if (this.restoredThings.has(id)) continue;
      this.restoredThings.add(id);
      const stored = ctx.getThing(this.options.householdId, id);
      const meta = stored?.meta;
      if (stored?.adapter !== this.name || meta?.claimant !== plan.claimant || meta.prefix !== this.prefix) continue;
      if (!isRecord(meta.entities)) continue;
      const device = readDevice(meta.device);
      for (const [key, record] of Object.entries(meta.entities)) {
        if (this.entities.has(key)) continue;
        const draft = this.storedDraft(key, record, device);
        if (!draft || this.heardTopics.has(draft.configTopic) || groupKeyOf(draft) !== groupKey) continue;
        const entity: LiveEntity = {
          draft,
          groupKey,
          unsubscribers: [],
          availability: { mode: availabilityMode(draft.config), heard: new Map() },
        };
        this.entities.set(key, entity);
        this.sources.set(draft.configTopic, [...(this.sources.get(draft.configTopic) ?? []), key]);
        this.restoredToSubscribe.push(entity);
        restored = true;
      }
    }
    return restored;
  }

  /**
   * An entity as a stored thing's meta holds it, checked as its config was when it came: one the
   * store holds in another shape, or that this version no longer takes, is not put back.
   */
  private storedDraft(key: string, record: unknown, device: DeviceInfo | undefined): EntityDraft | undefined {
    if (!isRecord(record) || !isRecord(record.config)) return undefined;
    const { component, configTopic, objectId, account } = record;
    if (typeof component !== 'string' || !isComponent(component)) return undefined;
    if (typeof configTopic !== 'string' || typeof objectId !== 'string') return undefined;
    const address = parseDiscoveryTopic(this.prefix, configTopic);
    if (!address || !key.startsWith(`${component}/`) || !key.endsWith(`/${objectId}`)) return undefined;
    const config = { ...record.config };
    if (topicProblem(config) ?? BEHAVIOURS[component].check(config)) return undefined;
    return {
      key,
      component,
      configTopic,
      objectId,
      config,
      ...(device ? { device } : {}),
      ...(typeof account === 'string' ? { account } : {}),
      problems: this.templateProblems(configTopic, objectId, config, false),
    };
  }

  /** Removes the group's things that are not among `ids`; resolves false if one could not be. */
  private async removeStale(groupKey: string, ids: string[]): Promise<boolean> {
    const ctx = this.requireContext();
    const kept = [...ids];
    for (const stale of this.groupThings.get(groupKey) ?? []) {
      if (ids.includes(stale)) continue;
      // Handed over to the group its entities moved to (see isFree): that group's thing now.
      const holder = this.idOwners.get(stale);
      if (holder !== undefined && holder !== groupKey && !holder.startsWith(`${groupKey}#`)) continue;
      try {
        await ctx.removeThing(this.options.householdId, stale);
      } catch (error) {
        // Still stored, so still the group's: kept, for a later rebuild to remove.
        this.log?.error(`cannot remove thing ${stale}: ${errorText(error)}`, { thing: stale });
        kept.push(stale);
        continue;
      }
      this.releaseId(stale);
      this.reportedAvailability.delete(stale);
    }
    if (kept.length) this.groupThings.set(groupKey, kept);
    else this.groupThings.delete(groupKey);
    return kept.length === ids.length;
  }

  private thingFor(id: string, plan: PlannedThing): Omit<Thing, 'createdAt' | 'updatedAt'> {
    const entities: Record<string, DiscoveredEntity> = {};
    const problems: string[] = [];
    for (const entity of plan.entities) {
      if (!entity.record) continue;
      entities[entity.draft.key] = entity.record;
      problems.push(...entity.record.problems);
    }
    const { device } = plan;
    const room = device?.suggested_area;
    return {
      id,
      householdId: this.options.householdId,
      kind: 'device',
      name: plan.name,
      ...(room ? { room } : {}),
      adapter: this.name,
      properties: plan.properties,
      actions: plan.actions,
      meta: {
        source: 'homeassistant-discovery',
        prefix: this.prefix,
        claimant: plan.claimant,
        ...(device ? { device } : {}),
        entities,
        problems,
      },
    };
  }

  /**
   * Gives a claimant (one device, or one entity) its thing id: the readable slug when free, or
   * the slug plus a short hash of the claimant's identifier when another device already has it.
   * An id once given stays with its claimant while the preferred slug is unchanged.
   */
  private claimId(claimant: string, preferred: string, entities: LiveEntity[]): string {
    const held = this.claims.get(claimant);
    if (held && held.preferred === preferred) return held.id;
    if (held) this.releaseId(held.id);
    const id = this.isFree(preferred, claimant, entities) ? preferred : hashedId(claimant, preferred);
    this.idOwners.set(id, claimant);
    this.claims.set(claimant, { preferred, id });
    return id;
  }

  private isFree(id: string, claimant: string, entities: LiveEntity[]): boolean {
    const owner = this.idOwners.get(id);
    if (owner === claimant) return true;
    const existing = this.ctx?.getThing(this.options.householdId, id);
    const ours = existing?.adapter === this.name ? existing : undefined;
    // A thing saved by an earlier run is ours again when it was made for the same claimant.
    if (owner === undefined && (!existing || ours?.meta?.claimant === claimant)) return true;
    // A claimant none of whose entities is left had this thing made from one of these: the same
    // config topic now names its device by other identifiers (Zigbee2MQTT's `zigbee2mqtt_0x…`
    // becoming `0x…`). It keeps its thing, and the rules and history on its id, rather than the
    // thing being removed and made again under a hashed id, or both kept after a restart.
    const previous = owner ?? ours?.meta?.claimant;
    const made = ours?.meta?.entities;
    if (typeof previous !== 'string' || !isRecord(made) || !this.vacated(previous)) return false;
    if (!entities.some((entity) => Object.hasOwn(made, entity.draft.key))) return false;
    if (owner !== undefined) this.releaseId(id);
    return true;
  }

  /** Whether no entity is left in the group a claimant (a device, or one entity of it) stands for. */
  private vacated(claimant: string): boolean {
    for (const entity of this.entities.values()) {
      if (claimant === entity.groupKey || claimant.startsWith(`${entity.groupKey}#`)) return false;
    }
    return true;
  }

  /**
   * The other id an earlier run may have saved this claimant's thing under: the hashed one while
   * the readable one was taken (by the thing it has now taken over, see isFree). Left stored, it
   * would stay with the last state it had, for ever; returned to be removed with the stale ones.
   */
  private orphanOf(claimant: string, preferred: string, id: string): string | undefined {
    if (id !== preferred) return undefined;
    const other = hashedId(claimant, preferred);
    const stored = this.ctx?.getThing(this.options.householdId, other);
    if (stored?.adapter !== this.name || stored.meta?.claimant !== claimant || this.idOwners.has(other))
      return undefined;
    return other;
  }

  private releaseId(id: string): void {
    const owner = this.idOwners.get(id);
    if (owner === undefined) return;
    this.idOwners.delete(id);
    if (this.claims.get(owner)?.id === id) this.claims.delete(owner);
  }

  // -- state ------------------------------------------------------------------------------------

  private async subscribeEntity(entity: LiveEntity): Promise<void> {
    const { draft } = entity;
    const behaviour = BEHAVIOURS[draft.component];
    const value = this.valueReader(entity);
    /** The last text a reader took from the message, before mapping: what a device sent that was not understood. */
    let taken: unknown;
    const tracked: ValueReader = (message, templateKey) => {
      taken = value(message, templateKey);
      return taken;
    };
    for (const reader of behaviour.readers(draft.config, tracked, draft.objectId)) {
      const unsubscribe = await this.router.add(
        reader.topic,
        (topic, payload, retained) => {
          const message = this.stateMessage(topic, payload);
          if (!message) return;
          taken = undefined;
          const values = reader.read(message);
          if (noValue(values)) this.notUnderstood(entity, message, taken);
          else this.ingest(entity, values, retained);
        },
        qosOf(draft.config),
      );
      entity.unsubscribers.push(unsubscribe);
    }
    const sources = availabilitySources(draft.config);
    for (const source of sources) {
      const unsubscribe = await this.router.add(
        source.topic,
        (topic, payload) => {
          const message = this.stateMessage(topic, payload);
          if (message) this.onAvailability(entity, source, message);
        },
        qosOf(draft.config),
      );
      entity.unsubscribers.push(unsubscribe);
    }
  }

  /**
   * Logs a state message an entity could read nothing from although it carried something: a
   * payload that is none of the entity's (`BANANA` for a switch's `ON`/`OFF`), or JSON that does
   * not parse. A message without the entity's part (a partial JSON update for another entity on
   * the same topic) is normal and not logged. Once a minute per entity, so a chatty device cannot
   * flood the log.
   */
  private notUnderstood(entity: LiveEntity, message: StateMessage, taken: unknown): void {
    const broken = message.json === undefined && mayBeJson(message.text);
    const meaningful =
      taken !== undefined && taken !== null && !(typeof taken === 'string' && NO_VALUE_TEXTS.has(taken.trim()));
    if (!broken && !meaningful) return;
    const now = this.ctx?.clock.now() ?? Date.now();
    const key = entity.draft.key;
    const last = this.notUnderstoodAt.get(key);
    if (last !== undefined && now - last < 60_000) return;
    if (this.notUnderstoodAt.size > 10_000) this.notUnderstoodAt.clear();
    this.notUnderstoodAt.set(key, now);
    const sample = JSON.stringify(message.text.length > 80 ? `${message.text.slice(0, 80)}…` : message.text);
    const why = broken
      ? 'it is not valid JSON'
      : `${JSON.stringify(plainValue(taken))} is not a value this ${entity.draft.component} knows`;
    this.log?.warn(`state on ${message.topic} not read: ${why} (payload ${sample})`, {
      topic: message.topic,
      entity: entity.draft.key,
      thing: entity.thingId,
    });
  }

  private stateMessage(topic: string, payload: Buffer): StateMessage | undefined {
    if (payload.length > MAX_PAYLOAD_BYTES) {
      this.log?.warn(`state on ${topic} ignored: ${payload.length} bytes is over the 64 KiB limit`, { topic });
      return undefined;
    }
    // Every entity reading one topic (a Zigbee2MQTT bulb's light and its sensors) gets the same
    // message object from the router in turn: decode and parse it once, not once per entity.
    const last = this.lastMessage;
    if (last && this.lastPayload === payload && last.topic === topic) return last;
    const text = payload.toString('utf8');
    const valueJson = mayBeJson(text) ? parseOrUndefined(text) : undefined;
    const message = { topic, text, json: valueJson?.data, valueJson };
    this.lastPayload = payload;
    this.lastMessage = message;
    return message;
  }

  /** Builds the reader an entity's components use: templates from the cache, problems skipped. */
  private valueReader(entity: LiveEntity): ValueReader {
    const { config } = entity.draft;
    return (message, templateKey) => {
      const source = templateKey ? config[templateKey] : undefined;
      if (source === undefined || source === null) return message.text;
      const compiled = typeof source === 'string' ? this.template(source) : undefined;
      // An unsupported template is already in thing.meta.problems; its value is never guessed.
      if (!compiled || compiled instanceof TemplateError) return undefined;
      try {
        // Home Assistant compares the text the template renders with the entity's payloads, so
        // the result keeps its Python type: a float is `21.0` as text, and still 21 as a number.
        return compiled.renderResult({ value: message.text, value_json: message.valueJson });
      } catch (error) {
        if (error instanceof TemplateTooLongError) {
          const once = `${entity.draft.key}\n${templateKey}`;
          if (this.tooLongLogged.has(once)) return undefined;
          if (this.tooLongLogged.size > 10_000) this.tooLongLogged.clear();
          this.tooLongLogged.add(once);
        }
        this.log?.warn(`state on ${message.topic} not read: ${templateKey}: ${errorText(error)}`, {
          topic: message.topic,
          entity: entity.draft.key,
        });
        return undefined;
      }
    };
  }

  private ingest(entity: LiveEntity, values: Array<[string, unknown]>, retained: boolean): void {
    const ctx = this.ctx;
    const thing = entity.thingId;
    if (!ctx || !thing || !entity.record) return;
    const ts = ctx.clock.now();
    const reports: Report[] = [];
    for (const [role, value] of values) {
      const property = entity.record.properties[role];
      if (value === undefined || !property) continue;
      reports.push({
        householdId: this.options.householdId,
        thing,
        property,
        value,
        source: 'mqtt',
        ts,
        // Always set, so every report has one shape: a spread here allocated on every report.
        retained,
      });
    }
    if (reports.length) ctx.ingest(reports);
  }

  private onAvailability(entity: LiveEntity, source: AvailabilitySource, message: StateMessage): void {
    let value: unknown = message.text;
    if (source.template) {
      const compiled = this.template(source.template);
      if (compiled instanceof TemplateError) return;
      try {
        value = compiled.renderResult({ value: message.text, value_json: message.valueJson });
      } catch (error) {
        this.log?.warn(`availability on ${message.topic} not read: ${errorText(error)}`, { topic: message.topic });
        return;
      }
    }
    const available = onOff(value, source.available, source.notAvailable);
    if (available === undefined) return;
    entity.availability.heard.set(source.topic, available);
    entity.availability.latest = available;
    if (entity.thingId) this.updateAvailability(entity.thingId);
  }

  /** A thing is online while every entity that has said anything about availability is available. */
  private updateAvailability(thingId: string): void {
    const ctx = this.ctx;
    if (!ctx) return;
    let known = false;
    let online = true;
    for (const entity of this.entities.values()) {
      if (entity.thingId !== thingId) continue;
      const available = entityAvailable(entity.availability, availabilitySources(entity.draft.config));
      if (available === undefined) continue;
      known = true;
      online &&= available;
    }
    if (!known || this.reportedAvailability.get(thingId) === online) return;
    this.reportedAvailability.set(thingId, online);
    ctx.setAvailability(this.options.householdId, thingId, online);
  }

  commandPayload(
    config: Json,
    templateKey: string | undefined,
    vars: Record<string, unknown>,
    fallback: string,
  ): string {
    const source = templateKey ? config[templateKey] : undefined;
    if (source === undefined || source === null) return fallback;
    const compiled =
      typeof source === 'string' ? this.template(source) : new TemplateError('a template must be a string');
    if (compiled instanceof TemplateError) throw new Error(`${templateKey} cannot be used: ${compiled.message}`);
    // Home Assistant renders a command template as text (parse_result=False), so a float goes out
    // as `21.0`, as Python prints it.
    try {
      return compiled.renderText(vars);
    } catch (error) {
      throw new Error(`${templateKey} failed: ${errorText(error)}`);
    }
  }

  private requireContext(): AdapterContext {
    if (!this.ctx) throw new Error('the Home Assistant discovery adapter is not running');
    return this.ctx;
  }
}

// ---------------------------------------------------------------------------------------------
// Grouping entities into things

/**
 * Entities that name the same device identifier are one thing; an entity without a device is its
 * own. The identifiers are the announcing account's own: another device account (or the hub's
 * trusted side) naming the same ones makes a thing of its own, and cannot join, rename or re-id
 * this one. The trusted side's keys keep the form they had before accounts counted.
 */
function groupKeyOf(draft: EntityDraft): string {
  const id = draft.device?.identifiers[0];
  if (!id) return `entity:${draft.key}`;
  return draft.account ? `device:${id}@${draft.account}` : `device:${id}`;
}

/**
 * Why a device account may not announce this config, or null. Every topic it names must be one of
 * the account's own, as the broker lets it use them: a command topic one it receives (or may
 * publish on itself), any other topic, read for its state, one it publishes. Otherwise a device
 * could have the hub publish for it where it may not (another device's `set` topic), or show
 * another device's state as its own. The hub's trusted side may name any topic.
 */
function accountProblem(config: Json, announcer: Announcer | undefined): string | null {
  if (!announcer?.account) return null;
  const topics: Array<[string, unknown]> = Object.entries(config).filter(([key]) => key.endsWith('_topic'));
  for (const source of availabilitySources(config)) topics.push(['availability.topic', source.topic]);
  for (const [key, topic] of topics) {
    if (typeof topic !== 'string' || topic === '') continue;
    const command = key.endsWith('command_topic');
    const own = command ? announcer.maySubscribe(topic) || announcer.mayPublish(topic) : announcer.mayPublish(topic);
    if (own) continue;
    const quoted = JSON.stringify(topic.slice(0, 100));
    return command
      ? `${key} ${quoted} is not a topic this device's account receives, so the hub will not publish its commands there`
      : `${key} ${quoted} is not a topic this device's account publishes, so the hub will not read its state there`;
  }
  return null;
}

function availabilityMode(config: Json): AvailabilityState['mode'] {
  const mode = config.availability_mode;
  return mode === 'all' || mode === 'any' ? mode : 'latest';
}

function entityName(draft: EntityDraft): string | undefined {
  return shownText(draft.config.name);
}

/**
 * Places a device's entities on things. Everything lands on one thing, except that a second
 * actuator of the same kind (a double relay's second channel) cannot share `switch.on` and
 * `turn_on` with the first, so it gets a thing of its own. A sensor that clashes is renamed.
 */
function planThings(groupKey: string, members: LiveEntity[]): PlannedThing[] {
  if (members.length === 0) return [];
  const first = members[0].draft;
  const device = deviceOf(members);
  const baseName = device?.name ?? entityName(first) ?? shownText(first.objectId) ?? first.component;
  const objectIdOption = typeof first.config.object_id === 'string' ? first.config.object_id : undefined;
  const basePreferred = slugify(device?.name ?? objectIdOption ?? first.objectId);
  const main: PlannedThing = {
    claimant: groupKey,
    preferredId: basePreferred,
    name: baseName,
    ...(device ? { device } : {}),
    entities: [],
    properties: {},
    actions: {},
  };
  const plans = [main];
  for (const entity of members) {
    const { draft } = entity;
    const offer = BEHAVIOURS[draft.component].offer(draft.config, draft.objectId);
    const problems = [...draft.problems];
    let target = main;
    const clashes =
      Object.keys(offer.properties).some((name) => Object.hasOwn(main.properties, name)) ||
      Object.keys(offer.actions).some((name) => Object.hasOwn(main.actions, name));
    if (clashes && !READ_ONLY.has(draft.component)) {
      target = {
        claimant: `${groupKey}#${draft.key}`,
        preferredId: `${basePreferred.slice(0, 80)}-${slugify(draft.objectId).slice(0, 40)}`,
        name: `${baseName} ${entityName(draft) ?? shownText(draft.objectId) ?? draft.component}`,
        ...(device ? { device } : {}),
        entities: [],
        properties: {},
        actions: {},
      };
      plans.push(target);
    }
    const properties: Record<string, string> = {};
    for (const [role, spec] of Object.entries(offer.properties)) {
      let name = role;
      if (Object.hasOwn(target.properties, name)) name = customSensorName(draft.objectId);
      if (Object.hasOwn(target.properties, name)) {
        problems.push(`${draft.objectId}: ${role} is already reported by another entity of this device`);
        continue;
      }
      target.properties[name] = spec;
      properties[role] = name;
    }
    Object.assign(target.actions, offer.actions);
    entity.record = {
      component: draft.component,
      configTopic: draft.configTopic,
      objectId: draft.objectId,
      name: entityName(draft) ?? null,
      ...(typeof draft.config.unique_id === 'string' ? { uniqueId: draft.config.unique_id } : {}),
      config: draft.config,
      properties,
      actions: Object.keys(offer.actions),
      problems,
      ...(draft.account ? { account: draft.account } : {}),
    };
    target.entities.push(entity);
  }
  return plans;
}

/**
 * A device as its entities describe it together. Home Assistant merges the device blocks of every
 * entity that names the device; many integrations send the name, maker and area once and only
 * `identifiers` on the other entities. Taking the first entity's block alone named the thing after
 * whichever entity sorted first (a "Humidity" thing instead of "Kitchen multi"), and changed its
 * id, losing its state, each time a config with a fuller or thinner block arrived.
 */
function deviceOf(members: LiveEntity[]): DeviceInfo | undefined {
  let merged: DeviceInfo | undefined;
  for (const { draft } of members) {
    if (!draft.device) continue;
    merged ??= { identifiers: draft.device.identifiers };
    for (const key of DEVICE_TEXTS) {
      if (merged[key] === undefined && draft.device[key] !== undefined) merged[key] = draft.device[key];
    }
  }
  return merged;
}

/** Finds, in a thing's stored meta, the entity that carries out one of its actions. */
function entityForAction(thing: Thing, action: string): DiscoveredEntity | undefined {
  const entities = thing.meta?.entities;
  if (!isRecord(entities)) return undefined;
  // for…in rather than Object.values: this runs for every command, and needs no array.
  for (const key in entities) {
    const entity = entities[key];
    if (!isRecord(entity) || !Array.isArray(entity.actions) || !entity.actions.includes(action)) continue;
    if (typeof entity.component === 'string' && isComponent(entity.component) && isRecord(entity.config)) {
      return entity as unknown as DiscoveredEntity;
    }
  }
  return undefined;
}

/** A claimant's thing id when its readable one is another's: the slug and a short hash of the claimant. */
function hashedId(claimant: string, preferred: string): string {
  return `${preferred.slice(0, 120)}-${shortHash(claimant)}`;
}

function shortHash(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 6);
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Whether a reader found nothing in its message. */
function noValue(values: Array<[string, unknown]>): boolean {
  for (const [, value] of values) if (value !== undefined) return false;
  return true;
}

/**
 * Whether a payload could be JSON at all, judged by its first character. Most plain payloads
 * (`ON`, `OFF`, `online`) are not, and a JSON.parse that throws costs far more than the message's
 * whole path through the hub (its error captures a stack).
 */
function mayBeJson(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    // Whitespace JSON allows before a value: space, tab, line feed, carriage return.
    if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) continue;
    // { [ " - 0–9, and the t, f, n of true, false, null.
    return (
      c === 0x7b ||
      c === 0x5b ||
      c === 0x22 ||
      c === 0x2d ||
      (c >= 0x30 && c <= 0x39) ||
      c === 0x74 ||
      c === 0x66 ||
      c === 0x6e
    );
  }
  return false;
}

/** The payload as JSON, or undefined when it is not JSON. */
function parseOrUndefined(text: string): JsonPayload | undefined {
  try {
    return new JsonPayload(text);
  } catch {
    return undefined;
  }
}
