/**
 * MQTT 3.1.1 §3.1.4-2 across the two listeners: a login on the device listener
 * (front/device-front.ts) takes over from aedes' connection with the same client id, including
 * one whose login aedes accepted but has not registered yet (aedes.clients has it only from its
 * "clientReady" on). The other way, embedded.ts asks the device listener directly.
 */
import type { Aedes, Client } from "aedes";

/** Logins between acceptance and registration are a handful at a time; past this, closed ones are dropped. */
const ADMITTING_PRUNE_AT = 256;

export class AedesTakeover {
  /**
   * Clients whose login aedes accepted but has not registered yet. Closed ones are pruned once
   * the map is past ADMITTING_PRUNE_AT.
   */
  private readonly admitting = new Map<string, Client>();

  constructor(private readonly aedes: Aedes) {}

  /** A login on the device listener takes over from aedes' connection with the same client id. */
  takeOver(clientId: string): void {
    const clients = (this.aedes as unknown as { clients: Record<string, Client | undefined> }).clients;
    clients[clientId]?.close();
    this.admitting.get(clientId)?.close();
    this.admitting.delete(clientId);
  }

  /** aedes accepted this client's login; it is registered at its "clientReady". */
  admitted(client: Client): void {
    if (this.admitting.size >= ADMITTING_PRUNE_AT)
      for (const [id, c] of this.admitting)
        if ((c as unknown as { closed: boolean }).closed) this.admitting.delete(id);
    this.admitting.set(client.id, client);
  }

  /** aedes registered the client ("clientReady"). */
  ready(client: Client): void {
    if (this.admitting.get(client.id) === client) this.admitting.delete(client.id);
  }

  clear(): void {
    this.admitting.clear();
  }
}
