#!/usr/bin/env node
// Which B-trees the SQLite store's rotation commits write, read straight from the WAL: every
// page a commit changes is one WAL frame (two pwrite calls, a checksum and a page copy), so
// frames per commit say where a commit's cost goes and what a schema change would save.
// Runs the token service and store without HTTP, `concurrency` sessions rotating together
// (one group commit per round), checkpoints, then rotates `rounds` more rounds and parses the
// frame headers of the WAL those rounds wrote, naming each page with SQLite's dbstat table.
//
//   npm run build && node bench/wal-pages.mjs [concurrency=16] [rounds=20]
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { startCoreService } from './lib/core-service.mjs';

const concurrency = Number(process.argv[2] ?? 16);
const rounds = Number(process.argv[3] ?? 20);
const WARM_ROUNDS = 300;
const dir = mkdtempSync(join(tmpdir(), 'baton-wal-'));
const file = join(dir, 'baton.db');
const { store, service, tokens } = await startCoreService(file, concurrency);
const probe = new Database(file);
try {
  const round = () =>
    Promise.all(
      tokens.map(async (token, i) => {
        tokens[i] = (await service.refresh({ refreshToken: token })).refreshToken;
      }),
    );
  // Let the tables and indexes grow first, so pages fill and split as they would in service.
  for (let k = 0; k < WARM_ROUNDS; k++) await round();
  // From here on the WAL holds only what the measured rounds write.
  probe.pragma('wal_checkpoint(TRUNCATE)');
  for (let k = 0; k < rounds; k++) await round();

  const wal = readFileSync(`${file}-wal`);
  const pageSize = wal.readUInt32BE(8);
  const frames = [];
  // A 32-byte WAL header, then frames: a 24-byte header (page number, then the database size
  // after the commit, non-zero only on a commit's last frame) and the page.
  for (let at = 32; at + 24 + pageSize <= wal.length; at += 24 + pageSize)
    frames.push({ page: wal.readUInt32BE(at), commits: wal.readUInt32BE(at + 4) !== 0 });
  const names = new Map(
    probe
      .prepare('SELECT name, pageno, pagetype FROM dbstat')
      .all()
      .map((r) => [r.pageno, `${r.name} (${r.pagetype})`]),
  );
  const commits = frames.filter((f) => f.commits).length;
  const rotations = rounds * concurrency;
  console.log(
    `c=${concurrency}: ${rotations} rotations in ${commits} commits wrote ${frames.length} WAL frames: ` +
      `${(frames.length / commits).toFixed(1)} per commit, ${(frames.length / rotations).toFixed(2)} per rotation`,
  );
  const byTree = new Map();
  for (const f of frames) {
    const name = names.get(f.page) ?? `page ${f.page}`;
    byTree.set(name, (byTree.get(name) ?? 0) + 1);
  }
  for (const [name, n] of [...byTree].sort((a, b) => b[1] - a[1]))
    console.log(`  ${(n / commits).toFixed(2).padStart(6)} per commit  ${name}`);
} finally {
  probe.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
}
