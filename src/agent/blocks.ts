import { randomBytes } from 'node:crypto'

/** A file the action created for its block, which goes with the last job's block. */
export const MADE =
  '# nix-offload: this file was made by the nix-offload action, and goes with the block of the last job\n'
/** The same, when the action created the file's directory too. */
export const MADE_WITH_DIR =
  '# nix-offload: this file and its directory were made by the nix-offload action, and go with the block of the last job\n'

/**
 * A job's token: 128 random bits, so that no other job's block has it. Hex, as the marker lines' pattern expects
 * (`blockTokens`).
 */
export function newToken(): string {
  return randomBytes(16).toString('hex')
}

const beginLine = (token: string): string => `# nix-offload ${token}: begin`
const endLine = (token: string): string => `# nix-offload ${token}: end`

/** Where this job's block starts and ends in `text` (its end marker line included, its newline not). */
export function findBlock(text: string, token: string): [number, number] | undefined {
  // The begin line at the start of a line: with a newline put before the text, its index is the line's own.
  const start = `\n${text}`.indexOf(`\n${beginLine(token)}`)
  if (start < 0) return undefined
  const end = endLine(token)
  const endAt = text.indexOf(`\n${end}`, start)
  if (endAt < 0) return undefined
  return [start, endAt + 1 + end.length]
}

/** The tokens of every job's block in `text`. */
export function blockTokens(text: string): string[] {
  return [...text.matchAll(/^# nix-offload ([0-9a-f]+): begin/gm)].map(match => match[1] ?? '')
}

/** The setting lines of every block, as a set: what the daemon would see of all the jobs together. */
export function settingsOf(text: string): string {
  const lines = new Set<string>()
  for (const token of blockTokens(text)) {
    const found = findBlock(text, token)
    if (found === undefined) continue
    for (const line of text.slice(found[0], found[1]).split('\n'))
      if (line.trim() !== '' && !line.startsWith('#')) lines.add(line.trim())
  }
  return [...lines].sort().join('\n')
}

/**
 * `text` with `block` on top (the block and its final newline) or at the end (a newline ending the last line, which
 * may have none, then the block without one). Either way the block's own bytes are the same few lines to take away.
 */
export function withBlock(text: string, block: string, at: 'top' | 'end'): string {
  const lines = block.replace(/\n$/, '')
  return at === 'top' ? `${lines}\n${text}` : `${text}\n${lines}`
}

/** `text` without the block at `found`, and without the newline that came with it. */
export function withoutBlock(text: string, found: [number, number], at: 'top' | 'end'): string {
  const [start, stop] = found
  return at === 'top'
    ? text.slice(0, start) + text.slice(text[stop] === '\n' ? stop + 1 : stop)
    : text.slice(0, text[start - 1] === '\n' ? start - 1 : start) + text.slice(stop)
}

/** `text` with the block at `found` replaced by `block`. */
export function withBlockReplaced(text: string, found: [number, number], block: string): string {
  return text.slice(0, found[0]) + block.replace(/\n$/, '') + text.slice(found[1])
}
