/**
 * Values in the job summaries' Markdown (GitHub-Flavored). Every value (a builder's name, a store URI or path, a
 * derivation's name, an input's value, error text) is a code span, made by `code`; the action's own wording that
 * carries values goes through `inline`. Either way it shows as the text it is: it stays on its line and in its table
 * cell, and cannot open a code span, link, image, emphasis or math, or become HTML. GFM turns a bare e-mail address,
 * URL or `www.` name in text into a link (`nixbuilder@127.0.0.1` into a mailto: one), but never inside a code span.
 */

const LINE_BREAK = /\r\n|\r|\n/g

/**
 * Text that reads as itself anywhere inline, table cells included: a line break becomes a space, `<`, `>` and `&`
 * entities, and Markdown's punctuation is escaped with a backslash (`|` as `\|`, which a table cell unescapes too).
 * An `_` inside a word (`x86_64-linux`) never starts emphasis, so it is left as it is. The `@` of an e-mail address,
 * the `:` of `://` and the `.` of `www.` are escaped too, which keeps GFM from making a link of them.
 */
export function inline(text: string): string {
  return text
    .replace(LINE_BREAK, ' ')
    .replace(/[\\`*[\]|~$@]|:(?=\/\/)|(?<=www)\./gi, mark => `\\${mark}`)
    .replace(/(?<![\p{L}\p{N}])_|_(?![\p{L}\p{N}])/gu, '\\_')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
}

/**
 * A code span showing `text` exactly. Its fence is longer than any run of backticks in it (padded with a space when
 * the text starts or ends with one), and in a table cell (`inTable`) a `|` is written `\|`, which GFM unescapes before
 * it reads the span. A backslash right before a `|` reads differently in different GFM parsers: such text is shown
 * with `inline` instead.
 */
export function code(text: string, inTable = true): string {
  const flat = text.replace(LINE_BREAK, ' ')
  if (flat.trim() === '' || (inTable && flat.includes('\\|'))) return inline(flat)
  const longest = Math.max(0, ...(flat.match(/`+/g) ?? []).map(run => run.length))
  const fence = '`'.repeat(longest + 1)
  const pad = /^[` ]|[` ]$/.test(flat) ? ' ' : ''
  return `${fence}${pad}${inTable ? flat.replace(/\|/g, '\\|') : flat}${pad}${fence}`
}
