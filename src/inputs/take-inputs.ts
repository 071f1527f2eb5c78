import * as core from '@actions/core'
import { Input } from './constants.js'
import type { InputReader } from './settings.js'

/**
 * Reads every input once, as @actions/core does, then takes every INPUT_* variable out of this process's environment:
 * a library that starts processes with the whole environment (@actions/cache runs tar and zstd) would otherwise hand
 * them the private key. The settings are read from the answer, as often as they are parsed.
 */
export function takeInputs(): InputReader {
  const values = new Map<Input, string>(Object.values(Input).map(name => [name, core.getInput(name)]))
  for (const variable of Object.keys(process.env)) {
    if (/^INPUT_/i.test(variable)) Reflect.deleteProperty(process.env, variable)
  }
  return name => values.get(name) ?? ''
}
