// Lines of `nix --log-format internal-json`, written as Nix writes them: `@nix ` and a JSON object whose keys are
// sorted (action, fields, id, level, text, type), the order the log reader's fast paths expect.

type Field = string | number

/** Any event, its keys sorted as Nix sorts them. */
export function nixLine(event: Record<string, unknown>): string {
  return `@nix ${JSON.stringify(Object.fromEntries(Object.entries(event).sort(([a], [b]) => a.localeCompare(b))))}`
}

// Ids may pass 2^53, as Nix's do: these take them as bigints too, which JSON.stringify cannot write.

export function startLine(
  id: number | bigint,
  type: number,
  { fields = [], level = 0, text = '' }: { fields?: Field[]; level?: number; text?: string } = {}
): string {
  return `@nix {"action":"start","fields":${JSON.stringify(fields)},"id":${id},"level":${level},"text":${JSON.stringify(text)},"type":${type}}`
}

export function resultLine(id: number | bigint, type: number, fields: Field[]): string {
  return `@nix {"action":"result","fields":${JSON.stringify(fields)},"id":${id},"type":${type}}`
}

export function stopLine(id: number | bigint): string {
  return `@nix {"action":"stop","id":${id}}`
}

/** The start of a build of `drvPath`, on `machine` ('' for the runner itself), as Nix 2.8 and later log it. */
export function buildStartLine(id: number, drvPath: string, machine: string): string {
  return startLine(id, 105, { fields: [drvPath, machine, 1, 1], level: 3, text: `building '${drvPath}'` })
}

/** One line a build printed. */
export function buildLogLine(id: number, text: string): string {
  return resultLine(id, 101, [text])
}

/** The build hook's untyped activity around a remote build's upload or download, as Nix 2.8 to 2.34 log it. */
export function hookPhaseLine(id: number, phase: 'upload' | 'download', machine: string): string {
  const text =
    phase === 'upload' ? `copying dependencies to '${machine}'` : `copying outputs from '${machine}'`
  return startLine(id, 0, { level: 4, text })
}

/** The copy of one store path (actCopyPath, 100) between two stores, 'local' being the runner's. */
export function copyPathLine(id: number, path: string, from: string, to: string): string {
  return startLine(id, 100, { fields: [path, from, to], level: 3, text: `copying path '${path}'` })
}

/** A progress result of a copy: `done` of `expected` bytes. */
export function copyProgressLine(id: number, done: number, expected: number): string {
  return resultLine(id, 105, [done, expected, 0, 0])
}
