/** An error's first line, for the one-line notes and DeviceErrors the backends give. */
export function firstLine(e: unknown): string {
  const message = e instanceof Error ? e.message : String(e);
  return message.split('\n')[0] ?? message;
}
