/**
 * MEASUREMENT HARNESS ONLY: the record tags of design "worker-relay" (relay-worker.ts).
 * Main thread to worker, each record starting with the connection's number (uint32 LE):
 * OPEN (nothing else), DATA (the bytes the socket sent), CLOSE (nothing else).
 * Worker to main thread: ACKS (the bytes to write to that connection's socket).
 */
export const TAG_OPEN = 1;
export const TAG_DATA = 2;
export const TAG_CLOSE = 3;
export const TAG_ACKS = 4;
