export {
  CHARGE_POINT_ID,
  CHARGER_PROPERTIES,
  OCPP_ADAPTER,
  OcppCentralSystem,
  type OcppCentralSystemOptions,
  type OcppMeta,
  type OcppSocket,
  ocppMeta,
} from './central-system.ts';
export { ocppRoute } from './route.ts';
export { type CallHandler, OCPP_SUBPROTOCOL, OcppCallError, OcppRpc, ocppSchema, type Payload } from './rpc.ts';
export { checkPayload, type OcppErrorCode, type OcppSchema, type Violation } from './validator.ts';
