/** ETAs: the port, the straight line, the approaching rule and the OSRM client. */
export * from './eta.js';
export * from './osrm.js';
