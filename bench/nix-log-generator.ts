/**
 * Writes a large `nix build --log-format internal-json` stderr log modelled on the Nix 2.8 captures in
 * __tests__/fixtures: keys in Nix's (sorted) order, ids counting up from one session base, several derivations built at
 * once on ssh-ng builders (remote actBuild start, then the builder's relayed one with an empty machine carrying the log
 * lines), copies both ways, progress and set-expected results, and a few local builds, warnings and failures.
 * Deterministic for a seed, streamed to disk in batches: the whole log is never in memory.
 */
import { closeSync, openSync, writeSync } from 'node:fs'

/** What the generated log holds, by line kind: for the benchmark's description of its input. */
export interface LogMix {
  bytes: number
  lines: number
  derivations: number
  kinds: Map<string, { lines: number; bytes: number }>
}

const BATCH_BYTES = 1 << 20
const CONCURRENT_BUILDS = 4
const MACHINES = ['ssh-ng://nixbuilder@nix-offload-3f9c2a-1', 'ssh-ng://nixbuilder@nix-offload-3f9c2a-2']
const NIX_BASE32 = '0123456789abcdfghijklmnpqrsvwxyz'
const PHASES = ['unpackPhase', 'patchPhase', 'configurePhase', 'buildPhase', 'checkPhase', 'installPhase']
const WORDS = [
  'gcc',
  '-O2',
  '-Wall',
  '-fPIC',
  '-DHAVE_CONFIG_H',
  '-I.',
  '-I../include',
  'src/parser.c',
  'libfoo_la-lexer.lo',
  'checking',
  'for',
  'whether',
  'the',
  'C',
  'compiler',
  'works...',
  'yes',
  'no',
  'CC',
  'LD',
  'make[2]:',
  'Entering',
  'directory',
  'warning:',
  'unused',
  'variable',
  'PASS:',
  'test-suite',
  '/build/source/lib/util.c:123:7:',
  'rustc',
  '--edition=2021',
  'Compiling',
  'serde_json',
  'v1.0.108'
]
const ODD_LINES = [
  'größe: 12 MiB ✓ — fertig',
  '日本語のテスト … 通過',
  '🚀 bundling assets ▸ done',
  '\u001b[32mPASS\u001b[0m tests/unit/parse.test.ts (14 tests) 37ms',
  '\u001b[1;31merror:\u001b[0m expected `;`, found `}`',
  'checking for "sys/types.h"... yes',
  'C:\\Windows\\path\\with\\backslashes\tand\ttabs',
  '',
  '   ',
  // What a build may print that looks like the log's own syntax: it arrives escaped inside fields[0].
  '{"action":"result","fields":[1,2,0,0],"id":1,"type":105}',
  '@nix {"action":"stop","id":17755394801669}',
  'progress: "type":105}',
  'echo \'"type":106}\''
]

/** mulberry32: small, fast and the same on every machine. */
function prng(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export function writeNixLog(path: string, targetBytes: number, seed = 2154016889): LogMix {
  const random = prng(seed)
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T
  const between = (low: number, high: number): number => low + Math.floor(random() * (high - low + 1))
  const mix: LogMix = { bytes: 0, lines: 0, derivations: 0, kinds: new Map() }
  const fd = openSync(path, 'w')
  let batch: string[] = []
  let batchBytes = 0
  let nextId = 17755394801664

  function emit(kind: string, event: object): void {
    const line = `@nix ${JSON.stringify(event)}\n`
    const bytes = Buffer.byteLength(line)
    batch.push(line)
    batchBytes += bytes
    mix.bytes += bytes
    mix.lines += 1
    const counts = mix.kinds.get(kind) ?? { lines: 0, bytes: 0 }
    counts.lines += 1
    counts.bytes += bytes
    mix.kinds.set(kind, counts)
    if (batchBytes >= BATCH_BYTES) flush()
  }

  function flush(): void {
    writeSync(fd, batch.join(''))
    batch = []
    batchBytes = 0
  }

  const storePath = (name: string): string =>
    `/nix/store/${Array.from({ length: 32 }, () => pick([...NIX_BASE32])).join('')}-${name}`
  const start = (kind: string, type: number, level: number, text: string, fields?: (string | number)[]) => {
    const id = nextId++
    emit(
      kind,
      fields === undefined
        ? { action: 'start', id, level, text, type }
        : startEvent(id, level, text, type, fields)
    )
    return id
  }
  const startEvent = (
    id: number,
    level: number,
    text: string,
    type: number,
    fields: (string | number)[]
  ) => ({
    action: 'start',
    fields,
    id,
    level,
    text,
    type
  })
  const stop = (id: number) => emit('stop', { action: 'stop', id })
  const result = (kind: string, id: number, type: number, fields: (string | number)[]) =>
    emit(kind, { action: 'result', fields, id, type })
  const msg = (kind: string, level: number, text: string) => emit(kind, { action: 'msg', level, msg: text })

  function logText(): string {
    const roll = random()
    if (roll < 0.08) return pick(ODD_LINES)
    if (roll < 0.09) return Array.from({ length: between(150, 1200) }, () => pick(WORDS)).join(' ')
    return Array.from({ length: between(2, 22) }, () => pick(WORDS)).join(' ')
  }

  // The session's top activities (realise, builds, copyPaths), as every fixture starts.
  msg('msg', 4, "evaluating file '/home/runner/work/app/default.nix'")
  const realise = start('start other', 102, 0, '')
  const builds = start('start other', 104, 0, '')
  const copyPaths = start('start other', 103, 0, '')
  let done = 0
  let expected = 0

  function progress(): void {
    const roll = random()
    if (roll < 0.5) result('result 105 progress', builds, 105, [done, expected, between(0, 4), 0])
    else if (roll < 0.75) result('result 105 progress', copyPaths, 105, [done, expected, 0, 0])
    else result('result 106 setExpected', realise, 106, [pick([100, 101, 105]), expected])
  }

  function copy(path: string, from: string, to: string): void {
    const wrapper = start('start other', 103, 3, 'copying 1 paths')
    const text = `copying path '${path}' ${to === 'local' ? `from '${from}'` : `to '${to}'`}`
    const id = start('start 100 copyPath', 100, 3, text, [path, from, to])
    const size = between(1 << 12, 1 << 26)
    for (let sent = 0; sent < size; sent += 1 << 22)
      result('result 105 progress', id, 105, [sent, size, 0, 0])
    stop(id)
    stop(wrapper)
  }

  /** One derivation's events, in order; the caller interleaves several of them, as parallel builds do. */
  function* derivation(): Generator<void> {
    mix.derivations += 1
    const name = `${pick(['openssl', 'zlib', 'app-server', 'python3.11-numpy', 'rust-crate-serde'])}-${between(1, 99)}.${between(0, 20)}`
    const drvPath = storePath(`${name}.drv`)
    const local = random() < 0.05
    const machine = local ? '' : pick(MACHINES)
    expected += 1
    if (!local) {
      const connecting = start('start other', 0, 4, `connecting to '${machine}'`)
      stop(connecting)
      const uploading = start('start other', 0, 4, `copying dependencies to '${machine}'`)
      for (let n = between(0, 3); n > 0; n--) copy(storePath(`dep-${n}`), 'local', machine)
      stop(uploading)
      yield
    }
    const text = local ? `building '${drvPath}'` : `building '${drvPath}' on '${machine}'`
    const build = start('start 105 build', 105, 3, text, [drvPath, machine, 1, 1])
    let logId = build
    const relayedTops: number[] = []
    if (!local) {
      for (const type of [102, 104, 103]) relayedTops.push(start('start other', type, 0, ''))
      logId = start('start 105 relayed', 105, 3, `building '${drvPath}'`, [drvPath, '', 1, 1])
    }
    const lines = random() < 0.03 ? between(2000, 8000) : between(40, 900)
    for (let n = 0; n < lines; n++) {
      if (n % 150 === 0) result('result 104 setPhase', logId, 104, [pick(PHASES)])
      result('result 101 log line', logId, 101, [logText()])
      if (random() < 0.8) progress()
      if (random() < 0.3) yield
    }
    const failed = random() < 0.01
    if (random() < 0.02)
      msg('msg', 1, `\u001b[35;1mwarning:\u001b[0m output of '${drvPath}' is not deterministic`)
    if (logId !== build) stop(logId)
    for (const id of relayedTops.reverse()) stop(id)
    if (failed) {
      msg(
        'msg',
        0,
        `\u001b[31;1merror:\u001b[0m builder for '\u001b[35;1m${drvPath}\u001b[0m' failed with exit code 2;\n` +
          '       last 10 log lines:\n       > make: *** [Makefile:12: all] Error 1'
      )
    } else if (!local) {
      const fetching = start('start other', 0, 4, `copying outputs from '${machine}'`)
      copy(storePath(name), machine, 'local')
      stop(fetching)
    }
    stop(build)
    done += 1
    progress()
  }

  const running: Generator<void>[] = []
  while (mix.bytes < targetBytes) {
    while (running.length < CONCURRENT_BUILDS) running.push(derivation())
    const slot = Math.floor(random() * running.length)
    if (running[slot]?.next().done === true) running.splice(slot, 1)
  }
  for (const build of running) while (build.next().done !== true);
  for (const id of [copyPaths, builds, realise]) stop(id)
  flush()
  closeSync(fd)
  return mix
}
