/**
 * The README's configuration table, generated from the one table of settings
 * (src/config/settings.ts): `node dist/scripts/config-table.js` prints it, and
 * test/ops/readme.test.ts checks the README holds exactly this.
 */
import { COMPUTED, SETTINGS } from '../src/config/settings.js';

/** The Markdown table: key, variable, default, meaning. */
export function configTable(): string {
  const rows = ['| config key | environment variable | default | meaning |', '|---|---|---|---|'];
  for (const setting of SETTINGS) {
    const fallback = setting.default === COMPUTED ? 'see meaning' : setting.default === undefined ? '—' : `\`${String(setting.default)}\``;
    rows.push(`| \`${setting.key}\` | \`${setting.env}\` | ${fallback} | ${setting.doc.replace(/\|/g, '\\|')} |`);
  }
  return rows.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) console.log(configTable());
