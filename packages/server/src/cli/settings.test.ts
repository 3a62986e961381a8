import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { flagOf, SETTINGS, settingsHelp } from './settings.js';

const read = (path: string) => readFileSync(new URL(path, import.meta.url), 'utf8');
/** Every variable config.ts reads, straight from its source: a new one must be added to the table and the docs. */
const readByConfig = [...new Set(read('./config.ts').match(/BATON_[A-Z_]+/g))];
const docs = read('../../../../docs/configuration.md');

describe('the settings table, docs/configuration.md and cli/config.ts agree', () => {
  it('every variable config.ts reads is in the table', () => {
    expect(readByConfig.length).toBeGreaterThan(15);
    expect(readByConfig.filter((name) => !SETTINGS.some((s) => s.name === name))).toEqual([]);
  });

  it('every setting has a row in docs/configuration.md with its flag and default', () => {
    for (const s of SETTINGS) {
      const row = docs.split('\n').find((line) => line.startsWith(`| \`${s.name}\` |`));
      expect(row, s.name).toBeDefined();
      expect(row).toContain(`\`${flagOf(s.name)}\``);
      expect(row).toContain(s.default === undefined ? 'unset' : `\`${s.default}\``);
      expect(row).toMatch(s.secret ? /\| yes \|$/ : /\| no \|$/);
    }
  });

  it('the docs list nothing the table does not know', () => {
    const documented = [...docs.matchAll(/^\| `(BATON_[A-Z_]+)` \|/gm)].map((m) => m[1]);
    expect(documented.sort()).toEqual(SETTINGS.map((s) => s.name).sort());
  });

  it('the help text names every flag, variable and default', () => {
    const help = settingsHelp();
    for (const s of SETTINGS) {
      expect(help).toContain(flagOf(s.name));
      expect(help).toContain(s.name);
      if (s.default !== undefined) expect(help).toContain(`default ${s.default}`);
    }
  });
});
