import { readFileSync } from 'node:fs';

/** The package's version, for cache and head metadata. */
export const TOOL_VERSION: string = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
