// The README's "Supported Nix versions" table, made from a matrix run's results (scripts/matrix.sh).
//
//   node scripts/version-table.mjs RESULTS_DIR            prints the table and the totals
//   node scripts/version-table.mjs RESULTS_DIR --write    also writes it into README.md between its markers
//   node scripts/version-table.mjs RESULTS_DIR --check    fails if README.md's table differs from this run's
//
// RESULTS_DIR/host.txt (written by scripts/matrix.sh) names the host's own Nix and the host: "2.8 Debian bookworm",
// "2.18 Ubuntu 24.04". The README's table is written from a run on the Debian 12 lab. --check compares the whole table
// when this run's host Nix is one the README's table has (as on that lab); on another host (Ubuntu 24.04), only
// the rows both have must match: the README's rows of its host's Nix are not run there, and this run's rows of its
// host's Nix are printed, not compared.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import console from 'node:console'
import process from 'node:process'

const [dir, flag] = process.argv.slice(2)
if (dir === undefined) {
  console.error('usage: version-table.mjs RESULTS_DIR [--write|--check]')
  process.exit(2)
}

const SCOPES = {
  full: 'every lab test',
  core: 'offload, configure-only, multiplex, faults, remote-store'
}
// The root filesystems' releases (lab/rootfs.sh), and Debian 12's own 2.8 for results without host.txt.
const SUITES = { 2.8: 'Debian bookworm', 2.26: 'Debian trixie', 2.34: 'Debian sid' }
const hostFile = join(dir, 'host.txt')
const host = existsSync(hostFile) ? /^([\d.]+) (.+)$/.exec(readFileSync(hostFile, 'utf8').trim()) : null
if (host !== null) SUITES[host[1]] = host[2]

const runs = readdirSync(dir)
  .map(name => /^runner-([\d.]+)-builder-([\d.]+)-(\w+)\.json$/.exec(name))
  .filter(match => match !== null)
  .map(([name, runner, builder, scope]) => {
    const results = JSON.parse(readFileSync(join(dir, name), 'utf8'))
    return {
      runner,
      builder,
      scope,
      passed: results.numPassedTests,
      failed: results.numFailedTests,
      skipped: results.numPendingTests + results.numTodoTests
    }
  })
  .sort((x, y) => order(x) - order(y))

function order(run) {
  const version = v => v.split('.').reduce((sum, part) => sum * 100 + Number(part), 0)
  return (run.scope === 'full' ? 0 : 1e8) + version(run.runner) * 1e4 + version(run.builder)
}

const rows = runs.map(
  run =>
    `| ${run.runner} (${SUITES[run.runner] ?? '?'}) | ${run.builder} (${SUITES[run.builder] ?? '?'}) | ` +
    `${SCOPES[run.scope] ?? run.scope} | ${run.failed === 0 && run.passed > 0 ? '✅ passes' : '❌ fails'} |`
)
/** A row's runner and builder versions and its scope: "2.8 → 2.34, every lab test". */
function rowKey(row) {
  const cells = row.split('|').map(cell => cell.trim())
  const version = cell => /^[\d.]+/.exec(cell ?? '')?.[0] ?? cell
  return {
    runner: version(cells[1]),
    builder: version(cells[2]),
    key: `${version(cells[1])} → ${version(cells[2])}, ${cells[3]}`
  }
}
const table = [
  '| runner Nix | builder Nix | lab tests run | result |',
  '| --- | --- | --- | --- |',
  ...rows
].join('\n')

console.log(table)
const total = runs.reduce(
  (sum, run) => ({
    passed: sum.passed + run.passed,
    failed: sum.failed + run.failed,
    skipped: sum.skipped + run.skipped
  }),
  { passed: 0, failed: 0, skipped: 0 }
)
console.log(`matrix: ${total.passed} passed, ${total.failed} failed, ${total.skipped} skipped`)

if (flag === '--write' || flag === '--check') {
  const start = '<!-- version-table:start (scripts/version-table.mjs) -->'
  const end = '<!-- version-table:end -->'
  const readme = readFileSync('README.md', 'utf8')
  const [before, rest] = readme.split(start)
  const after = rest?.split(end)[1]
  if (before === undefined || after === undefined) {
    console.error(`README.md has no ${start} … ${end} markers`)
    process.exit(1)
  }
  const written = `${before}${start}\n${table}\n${end}${after}`
  if (flag === '--write') writeFileSync('README.md', written)
  else if (written !== readme) {
    const readmeRows = rest
      .split(end)[0]
      .split('\n')
      .filter(line => /^\| [\d.]+ /.test(line))
    const readmeVersions = new Set(readmeRows.flatMap(row => [rowKey(row).runner, rowKey(row).builder]))
    const problems =
      host === null || readmeVersions.has(host[1]) ? ['the table differs'] : otherHost(readmeRows)
    if (problems.length > 0) {
      console.error(
        `README.md's Supported Nix versions table is not this run's (${problems.join('; ')}): run scripts/matrix.sh, ` +
          'then node scripts/version-table.mjs RESULTS_DIR --write'
      )
      process.exit(1)
    }
  }
}

/**
 * On a host whose own Nix the README's table does not have: the problems with the rows both have, with README rows
 * of this run's versions that it did not run, and with rows of this run that the README lacks other than the host's.
 */
function otherHost(readmeRows) {
  const runVersions = new Set(runs.flatMap(run => [run.runner, run.builder]))
  const ours = new Map(rows.map(row => [rowKey(row).key, row]))
  const theirs = new Map(readmeRows.map(row => [rowKey(row).key, row]))
  const problems = []
  let compared = 0
  for (const [key, row] of theirs) {
    const { runner, builder } = rowKey(row)
    if (ours.has(key)) {
      compared++
      if (ours.get(key) !== row) problems.push(`${key}: README.md has "${row}", this run "${ours.get(key)}"`)
    } else if (runVersions.has(runner) && runVersions.has(builder)) problems.push(`${key}: not run`)
  }
  const hostRows = []
  for (const [key, row] of ours) {
    if (theirs.has(key)) continue
    const { runner, builder } = rowKey(row)
    if (runner === host[1] || builder === host[1]) hostRows.push(row)
    else problems.push(`${key}: not in README.md`)
  }
  if (problems.length === 0) {
    console.log(
      `README.md's table comes from a host whose own Nix is not ${host[1]} (${host[2]}, this one): ` +
        `${compared} rows compared and the same; the rows of Nix ${host[1]}, not in README.md:\n${hostRows.join('\n')}`
    )
  }
  return problems
}
