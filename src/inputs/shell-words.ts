/**
 * Splits a command line the way a POSIX shell splits words: whitespace separates, single quotes keep everything,
 * double quotes keep everything but `\"`, `\\`, `\$` and `` \` `` escapes, a backslash outside quotes escapes the next
 * character. No expansion of any kind happens, so `$HOME` stays as it is.
 */
export function splitShellWords(line: string): string[] {
  const words: string[] = []
  let word = ''
  let inWord = false
  let i = 0
  while (i < line.length) {
    const c = line.charAt(i)
    if (c === "'") {
      const end = line.indexOf("'", i + 1)
      if (end < 0) throw new Error('a single quote is not closed')
      word += line.slice(i + 1, end)
      inWord = true
      i = end + 1
    } else if (c === '"') {
      i += 1
      let closed = false
      while (i < line.length) {
        const d = line.charAt(i)
        if (d === '"') {
          closed = true
          i += 1
          break
        }
        if (d === '\\' && i + 1 < line.length && '"\\$`\n'.includes(line.charAt(i + 1))) {
          if (line.charAt(i + 1) !== '\n') word += line.charAt(i + 1)
          i += 2
        } else {
          word += d
          i += 1
        }
      }
      if (!closed) throw new Error('a double quote is not closed')
      inWord = true
    } else if (c === '\\') {
      if (i + 1 >= line.length) throw new Error('the line ends in a lone backslash')
      if (line.charAt(i + 1) !== '\n') {
        word += line.charAt(i + 1)
        inWord = true
      }
      i += 2
    } else if (/\s/.test(c)) {
      if (inWord) words.push(word)
      word = ''
      inWord = false
      i += 1
    } else {
      word += c
      inWord = true
      i += 1
    }
  }
  if (inWord) words.push(word)
  return words
}
