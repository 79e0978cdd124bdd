/** The package's public client API: typed protocol clients and the wire types. */
export * from '../protocol.js';
export { type ClientOptions, ConnectionClosedError, DeviceClient, type Reply, SafetyClient } from './client.js';
export { type Fix, FixUplink } from './fix-uplink.js';
