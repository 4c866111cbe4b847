// Identifiers: UUIDv7 (time-ordered, so a device's ids sort by creation)
// for generated document ids and opIds, from `crypto.getRandomValues` when
// the platform has it.

/** A UUIDv7 for `nowMs`, with randomness from `crypto` (or `random` where there is none). */
export function uuidv7(nowMs: number, random: () => number = Math.random): string {
  const bytes = new Uint8Array(16);
  const cryptoApi = (globalThis as { crypto?: Crypto }).crypto;
  if (cryptoApi?.getRandomValues) cryptoApi.getRandomValues(bytes);
  else for (let i = 0; i < 16; i++) bytes[i] = Math.floor(random() * 256);
  let time = Math.max(0, Math.floor(nowMs));
  for (let i = 5; i >= 0; i--) {
    bytes[i] = time % 256;
    time = Math.floor(time / 256);
  }
  bytes[6] = 0x70 | ((bytes[6] ?? 0) & 0x0f);
  bytes[8] = 0x80 | ((bytes[8] ?? 0) & 0x3f);
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

const NAME = /^[A-Za-z0-9_-]{1,64}$/;

/** Whether `name` is a valid collection or namespace name (1-64 of `[A-Za-z0-9_-]`). */
export function isValidName(name: unknown): name is string {
  return typeof name === 'string' && NAME.test(name);
}

const COLLECTION = /^[A-Za-z0-9_-]{1,64}(@[A-Za-z0-9_-]{1,64})?$/;

/**
 * Whether `name` is a valid collection name: a plain name, or a branch
 * address `collection@branch` (the branch of each document of `collection`).
 */
export function isValidCollection(name: unknown): name is string {
  return typeof name === 'string' && COLLECTION.test(name);
}

/** Whether `id` is a valid document id (1-128 characters). */
export function isValidId(id: unknown): id is string {
  return typeof id === 'string' && id.length >= 1 && id.length <= 128;
}
