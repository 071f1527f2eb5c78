// Writes the third-party licence file of a bundle that ncc split into chunks. ncc's own `--license` file lists only
// the packages of the last chunk it emitted, so the canary bundle's file (its @actions/cache is a chunk of its own) is
// written here instead: every package that production code can load (package-lock.json entries not marked dev), in
// ncc's format (name, licence, text).
//
//   node scripts/licenses.mjs dist/canary/licenses.txt
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import process from 'node:process'

const target = process.argv[2]
if (target === undefined) throw new Error('usage: node scripts/licenses.mjs <output file>')

const lock = JSON.parse(readFileSync('package-lock.json', 'utf8'))
const entries = new Map()
for (const [path, info] of Object.entries(lock.packages)) {
  if (path === '' || info.dev === true || info.devOptional === true || info.optional === true) continue
  const manifest = JSON.parse(readFileSync(join(path, 'package.json'), 'utf8'))
  const licenceFile = readdirSync(path).find(name => /^(licen[cs]e|copying)(\.(md|txt))?$/i.test(name))
  const text = licenceFile === undefined ? '' : readFileSync(join(path, licenceFile), 'utf8').trim()
  const licence = typeof manifest.license === 'object' ? manifest.license?.type : manifest.license
  entries.set(manifest.name, `${manifest.name}\n${licence ?? 'UNKNOWN'}\n${text}\n`)
}
const names = [...entries.keys()].sort()
writeFileSync(target, names.map(name => entries.get(name)).join('\n'))
process.stdout.write(`${target}: ${names.length} packages\n`)
