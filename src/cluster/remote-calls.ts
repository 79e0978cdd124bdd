/**
 * The requests one node runs for another (multi-node mode). They crossed a network, so
 * their arguments pass the same compiled schemas as the gateway's input on arrival
 * (src/shared/bus-schemas.ts), even though the first node's gateway validated them already.
 */
export { parseRemoteCall, type RemoteCall } from '../shared/bus-schemas.js';
