/** The device models this gateway speaks, by model name. */
import { ds10 } from "./ds10.js";
import { ec200 } from "./ec200.js";
import type { MqttDeviceProfile } from "./profile.js";

// biome-ignore lint/suspicious/noExplicitAny: profiles differ in sample type; the registry is keyed by model.
export const mqttProfiles: Readonly<Record<"ec200" | "ds10", MqttDeviceProfile<any, any>>> = { ec200, ds10 };
