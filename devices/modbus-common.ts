/** Small helpers shared by the polled device profiles. */
/** "08:30-17:30" as minutes after midnight. */
export function parseOpeningHours(text: string): { from: number; to: number } {
  const m = /^(\d\d):(\d\d)-(\d\d):(\d\d)$/.exec(text);
  if (!m) throw new Error(`opening hours "${text}" must look like 08:30-17:30`);
  return { from: Number(m[1]) * 60 + Number(m[2]), to: Number(m[3]) * 60 + Number(m[4]) };
}

export function withinHours(minute: number, hours: { from: number; to: number }): boolean {
  return hours.from <= hours.to
    ? minute >= hours.from && minute < hours.to
    : minute >= hours.from || minute < hours.to;
}
