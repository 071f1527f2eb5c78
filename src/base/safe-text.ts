/**
 * Text from outside the action (a builder, the evaluation, Nix's log, saved state) made harmless to print on the
 * runner's log. The runner reads a workflow command from any line that starts with `::` once leading blanks are
 * trimmed, and an old-style one from `##[` anywhere in a line; a bare `\r` ends a line for it as `\n` does.
 * `core.error`/`warning`/`notice` escape `%`, `\r` and `\n` in their message, but `core.info` writes raw text.
 */

// C0 controls and DEL, C1 controls, and Unicode's line and paragraph separators.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g
// eslint-disable-next-line no-control-regex
const CONTROL_BUT_LINES = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029]/g

const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' }

/** `\r` → `\r` as two visible characters; others as `\x1b`, `\u2028`. */
function visible(char: string): string {
  const code = char.charCodeAt(0)
  return (
    NAMED[char] ?? (code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16)}`)
  )
}

/** A zero-width space between the two characters that would start a workflow command: the text still reads the same. */
function breakCommands(text: string): string {
  return text.replace(/:(?=:)/g, ':\u200b').replace(/#(?=#\[)/g, '#\u200b')
}

/** One line of outside text, for a field printed inside a line: every control character shown as an escape. */
export function safeLine(text: string): string {
  return breakCommands(text.replace(CONTROL, visible))
}

/** Outside text of several lines (an error's tail, a message): its `\n` and tabs kept, every other control escaped. */
export function safeText(text: string): string {
  return breakCommands(text.replace(CONTROL_BUT_LINES, visible))
}
