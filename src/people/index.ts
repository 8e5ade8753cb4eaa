export { PeopleDirectory, type TrackerMeta } from './directory.ts';
export { distanceMetres, type GeoPoint, offsetPoint } from './geo.ts';
export {
  type LocationMessage,
  type OwnTracksMessage,
  type ParseResult,
  type PhoneFix,
  parseOwnTracks,
  type TransitionMessage,
} from './owntracks.ts';
export { type PresenceChange, PresenceTracker } from './presence.ts';
export type { Outcome } from './receiver.ts';
export { type HttpAnswer, PeopleService, type PeopleServiceOptions } from './service.ts';
export { HOME_ZONE_ID, judgeFix, type PresenceSettings, type Zone, type ZoneEvidence } from './zones.ts';
