import ssh2 from 'ssh2'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { type Tokens, lexer } from 'marked'
import { describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { BUILD_INPUTS, CANARY_INPUTS, Input, Output } from '../../src/inputs/constants.js'
import {
  type InputReader,
  parseCanarySettings,
  parseSettings,
  type Settings,
  type SettingsDefaults
} from '../../src/inputs/settings.js'
import { readableKeyPair } from './support/ssh-keys.js'

/**
 * action.yml (the build) and canary/action.yml (the canary) are what the Marketplace and the workflow editor show, and
 * the README's tables repeat them: they must agree (names, defaults, descriptions; an input both take says the same in
 * both), and all must say what the code does: the inputs each action reads, the outputs it sets, each input's default
 * and the values it accepts.
 */

const ROOT = join(import.meta.dirname, '..', '..')

interface Declared {
  description: string
  default?: string
}
interface Action {
  inputs: Map<string, Declared>
  outputs: Map<string, Declared>
}

function readAction(text: string): Action {
  const action = parse(text) as {
    inputs: Record<string, { description: string; default?: unknown }>
    outputs: Record<string, { description: string }>
  }
  const declared = (
    entries: Record<string, { description: string; default?: unknown }>
  ): Map<string, Declared> =>
    new Map(
      Object.entries(entries).map(([name, entry]) => [
        name,
        {
          description: entry.description.replace(/\s+/g, ' ').trim(),
          ...(entry.default === undefined ? {} : { default: String(entry.default) })
        }
      ])
    )
  return { inputs: declared(action.inputs), outputs: declared(action.outputs) }
}

/** The README table whose header is `header`, as the raw Markdown of each cell (`\|` unescaped, as GFM does). */
function readmeTable(readme: string, header: string[]): string[][] {
  const table = lexer(readme, { gfm: true }).find(
    (token): token is Tokens.Table =>
      token.type === 'table' &&
      JSON.stringify((token as Tokens.Table).header.map(cell => cell.text)) === JSON.stringify(header)
  )
  if (table === undefined) throw new Error(`README.md has no table | ${header.join(' | ')} |`)
  return table.rows.map(row => row.map(cell => cell.text))
}

const DEFAULT = /(?:^|\. )Default: (.+)\.$/

/** The README's tables for one action: the build's are headed `input` and `output`, the canary's `canary input`…. */
interface Tables {
  input: string
  output: string
  /** The main action, for the canary: an input of both has the row `As in [Inputs](#inputs).` in the canary's table. */
  main?: Action
}

const BUILD_TABLES: Tables = { input: 'input', output: 'output' }
/** What the canary's table says of an input the build takes too, whose description is the same in both. */
const AS_IN_INPUTS = 'As in [Inputs](#inputs).'

/** Where the README's input and output tables, and the descriptions in action.yml, disagree or fall short. */
function disagreements(action: Action, readme: string, tables: Tables = BUILD_TABLES): string[] {
  const found: string[] = []
  const inputs = readmeTable(readme, [tables.input, 'default', 'description'])
  const outputs = readmeTable(readme, [tables.output, 'description'])
  const names = (rows: string[][]): string[] => rows.map(([name = '']) => name.replace(/^`(.*)`$/, '$1'))
  if (JSON.stringify(names(inputs)) !== JSON.stringify([...action.inputs.keys()])) {
    found.push(
      `README inputs ${names(inputs).join(', ')} are not action.yml's ${[...action.inputs.keys()].join(', ')}`
    )
  }
  if (JSON.stringify(names(outputs)) !== JSON.stringify([...action.outputs.keys()])) {
    found.push(`README outputs ${names(outputs).join(', ')} are not action.yml's`)
  }
  for (const [name, input] of action.inputs) {
    const stated = DEFAULT.exec(input.description)?.[1]
    if (stated === undefined) {
      found.push(`action.yml input ${name}: the description does not end with "Default: …."`)
    } else if (input.default !== undefined && stated !== `\`${input.default}\``) {
      found.push(
        `action.yml input ${name}: the description says "Default: ${stated}", the default is ${input.default}`
      )
    } else if (input.default === undefined && /^`[^`]*`$/.test(stated)) {
      found.push(
        `action.yml input ${name}: the description says "Default: ${stated}", which action.yml does not set`
      )
    }
    const row = inputs.find(([cell]) => cell === `\`${name}\``)
    if (row === undefined) continue
    const [, readmeDefault, readmeDescription] = row
    if (readmeDefault !== (input.default === undefined ? stated : `\`${input.default}\``)) {
      found.push(
        `README input ${name}: default "${readmeDefault}", action.yml's is "${input.default ?? stated}"`
      )
    }
    const shared = tables.main?.inputs.has(name) === true
    if (readmeDescription !== (shared ? AS_IN_INPUTS : input.description)) {
      found.push(
        `README input ${name}: the description is not action.yml's: "${shared ? AS_IN_INPUTS : input.description}"`
      )
    }
  }
  for (const [name, output] of action.outputs) {
    const row = outputs.find(([cell]) => cell === `\`${name}\``)
    if (row !== undefined && row[1] !== output.description) {
      found.push(`README output ${name}: the description is not action.yml's: "${output.description}"`)
    }
  }
  return found
}

const ACTION_YML = readFileSync(join(ROOT, 'action.yml'), 'utf8')
const CANARY_ACTION_YML = readFileSync(join(ROOT, 'canary', 'action.yml'), 'utf8')
const README = readFileSync(join(ROOT, 'README.md'), 'utf8')
const action = readAction(ACTION_YML)
const canaryAction = readAction(CANARY_ACTION_YML)
const CANARY_TABLES: Tables = { input: 'canary input', output: 'canary output', main: action }

/** Every .ts file under src/ (under `within` only, or outside it), as text. */
function sources(select: { within?: string; outside?: string } = {}, dir = join(ROOT, 'src')): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap(entry => {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) return path === select.outside ? [] : sources(select, path)
    const wanted = select.within === undefined || path.startsWith(select.within)
    return entry.name.endsWith('.ts') && wanted ? [readFileSync(path, 'utf8')] : []
  })
}

/** The outputs `code` sets, as action.yml names them. */
function outputsSet(code: string[]): string[] {
  const text = code.join('\n')
  return Object.entries(Output).flatMap(([key, name]) =>
    new RegExp(`setOutput\\(\\s*Output\\.${key},`).test(text) ? [name] : []
  )
}

describe('action.yml, canary/action.yml and the README', () => {
  it("agree: the build's tables are action.yml's, in the same order, defaults and descriptions", () => {
    expect(disagreements(action, README)).toEqual([])
  })

  it("agree: the canary's tables are canary/action.yml's, an input of both pointing to the build's row", () => {
    expect(disagreements(canaryAction, README, CANARY_TABLES)).toEqual([])
  })

  it('say the same of an input both actions take: the description and the default, word for word', () => {
    const shared = [...canaryAction.inputs.keys()].filter(name => action.inputs.has(name))
    expect(shared.length).toBeGreaterThan(10)
    for (const name of shared) expect(canaryAction.inputs.get(name), name).toEqual(action.inputs.get(name))
  })

  it('declare exactly the inputs each action reads, and the code reads every one (Input)', () => {
    expect([...action.inputs.keys()].sort()).toEqual([...BUILD_INPUTS].sort())
    expect([...canaryAction.inputs.keys()]).toEqual(CANARY_INPUTS)
    const settings = readFileSync(join(ROOT, 'src/inputs/settings.ts'), 'utf8')
    for (const [key, name] of Object.entries(Input)) expect(settings, name).toContain(`read(Input.${key})`)
  })

  it('declare exactly the outputs each action sets: the canary in canary/, the build elsewhere (Output)', () => {
    const canaryDir = join(ROOT, 'src', 'canary')
    expect([...canaryAction.outputs.keys()].sort()).toEqual(outputsSet(sources({ within: canaryDir })).sort())
    expect([...action.outputs.keys()].sort()).toEqual(outputsSet(sources({ outside: canaryDir })).sort())
    const declared = new Set([...action.outputs.keys(), ...canaryAction.outputs.keys()])
    expect([...declared].sort()).toEqual(Object.values(Output).sort())
  })
})

describe('action.yml and canary/action.yml for the Marketplace', () => {
  it.each([
    ['action.yml', ACTION_YML],
    ['canary/action.yml', CANARY_ACTION_YML]
  ])(
    '%s has a name, branding and a description shorter than 125 characters (the Marketplace refuses a longer one)',
    (_name, text) => {
      const { name, description, branding } = parse(text) as {
        name: unknown
        description: unknown
        branding: unknown
      }
      expect(typeof name).toBe('string')
      expect(typeof description).toBe('string')
      expect(String(description).length).toBeGreaterThan(0)
      expect(String(description).length).toBeLessThan(125)
      expect(branding).toEqual({ icon: expect.any(String), color: 'blue' })
    }
  )
})

describe('the checks can fail (negative controls)', () => {
  const mutate = (from: string | RegExp, to: string, tables: Tables = BUILD_TABLES): string[] => {
    const changed = README.replace(from, to)
    expect(changed).not.toBe(README)
    return disagreements(tables === BUILD_TABLES ? action : canaryAction, changed, tables)
  }

  it('catches a README default that differs from action.yml', () => {
    expect(mutate('| `port` | `22` |', '| `port` | `2222` |')).toEqual([
      'README input port: default "`2222`", action.yml\'s is "22"'
    ])
    expect(mutate('| `trend-factor` | `3` |', '| `trend-factor` | `2` |', CANARY_TABLES)).toEqual([
      'README input trend-factor: default "`2`", action.yml\'s is "3"'
    ])
  })

  it('catches a README description that differs, and a missing row', () => {
    expect(mutate('SSH port of the `host` builder', 'SSH port')).toEqual([
      expect.stringMatching(/^README input port: the description is not action.yml's/)
    ])
    expect(mutate(/\| `summary` \|.*\n/, '')).toEqual([
      expect.stringMatching(/^README inputs .* are not action.yml's/)
    ])
    expect(mutate(/\| `confirmed` \|.*\n/, '')).toEqual([
      "README outputs out-paths, remote-builds, local-builds, failed-builds, report, builders-healthy are not action.yml's"
    ])
    expect(mutate(/\| `healthy` \|.*\n/, '', CANARY_TABLES)).toEqual([
      "README outputs builders-healthy, report are not action.yml's"
    ])
  })

  it("catches a canary row that does not point to the build's row for an input of both, or points for its own", () => {
    expect(
      mutate(`| \`port\` | \`22\` | ${AS_IN_INPUTS} |`, '| `port` | `22` | The SSH port. |', CANARY_TABLES)
    ).toEqual([`README input port: the description is not action.yml's: "${AS_IN_INPUTS}"`])
    expect(mutate(/(\| `min-free-gb` \| `10` \| )[^|]*\|/, `$1${AS_IN_INPUTS} |`, CANARY_TABLES)).toEqual([
      expect.stringMatching(
        /^README input min-free-gb: the description is not action.yml's: "A builder with less/
      )
    ])
  })

  it('catches a description in action.yml that does not state its default, or states another', () => {
    const without = readAction(ACTION_YML.replace('Default: `22`.', 'The usual one.'))
    expect(disagreements(without, README)).toContain(
      'action.yml input port: the description does not end with "Default: …."'
    )
    const other = readAction(ACTION_YML.replace('Default: `22`.', 'Default: `2222`.'))
    expect(disagreements(other, README)).toContain(
      'action.yml input port: the description says "Default: `2222`", the default is 22'
    )
  })
})

// What the code does with each input, against what each action.yml says.

const DEFAULTS = { system: 'x86_64-linux' }
const REQUIRED: Partial<Record<Input, string>> = {
  [Input.Host]: 'builder.example.com',
  [Input.User]: 'nixbuilder',
  [Input.SshPrivateKey]: readableKeyPair(() => ssh2.utils.generateKeyPairSync('ed25519')).private
}

/** An action, and how its entry parses its inputs. */
interface Parsed {
  file: string
  declaredBy: Action
  parse: (read: InputReader, defaults: SettingsDefaults) => Settings
  /** The inputs whose description gives a range of numbers. */
  ranges: number
}

const ACTIONS: Parsed[] = [
  // port, max-jobs, speed-factor, local-jobs, retries and min-free-gib.
  { file: 'action.yml', declaredBy: action, parse: parseSettings, ranges: 6 },
  // port, max-jobs, speed-factor and the five thresholds.
  { file: 'canary/action.yml', declaredBy: canaryAction, parse: parseCanarySettings, ranges: 8 }
]

describe.each(ACTIONS)(
  'each input in $file, against the code',
  ({ declaredBy, parse: parseWith, ranges }) => {
    /** The settings over the required inputs and `values`, or the error parsing throws. */
    const settingsWith = (values: Partial<Record<Input, string>>): Settings | Error => {
      try {
        return parseWith(name => values[name] ?? REQUIRED[name] ?? '', DEFAULTS)
      } catch (error) {
        return error as Error
      }
    }
    const declared = (name: Input): Declared => declaredBy.inputs.get(name) ?? { description: '' }

    it('has the default the code uses for an empty value', () => {
      const defaults = Object.fromEntries(
        [...declaredBy.inputs].flatMap(([name, input]) =>
          input.default === undefined ? [] : [[name, input.default]]
        )
      )
      expect(settingsWith({})).not.toBeInstanceOf(Error)
      expect(settingsWith(defaults)).toEqual(settingsWith({}))
      // Without a default in action.yml, the description names the code's own.
      const builder = (settingsWith({}) as Settings).builders[0]
      expect(declared(Input.Systems).description).toMatch(/Default: the runner's own Nix `system`\.$/)
      expect(builder?.systems).toEqual([DEFAULTS.system])
      expect(builder?.supportedFeatures).toEqual([])
      expect(builder?.mandatoryFeatures).toEqual([])
    })

    it('names the values a true/false input accepts', () => {
      for (const [name, input] of declaredBy.inputs) {
        if (input.default !== 'true' && input.default !== 'false') continue
        expect(input.description, name).toMatch(/^`true` or `false`/)
        for (const value of ['true', 'false'])
          expect(settingsWith({ [name]: value }), name).not.toBeInstanceOf(Error)
        expect(settingsWith({ [name]: 'yes' }), name).toBeInstanceOf(Error)
      }
    })

    it('names every value a choice accepts, and the code accepts just those', () => {
      const choices: Partial<Record<Input, string[]>> = {
        [Input.Protocol]: ['ssh-ng', 'ssh'],
        [Input.Strategy]: ['hook', 'remote-store', 'auto'],
        [Input.Fallback]: ['fail', 'local']
      }
      for (const [name, values = []] of Object.entries(choices) as [Input, string[]][]) {
        if (!declaredBy.inputs.has(name)) continue
        for (const value of values) {
          expect(declared(name).description, name).toContain(`\`${value}\``)
          expect(settingsWith({ [name]: value }), `${name}: ${value}`).not.toBeInstanceOf(Error)
        }
        expect(settingsWith({ [name]: 'other' }), name).toBeInstanceOf(Error)
      }
    })

    it('gives the range a number accepts, and the code accepts just that range', () => {
      let checked = 0
      for (const [name, input] of declaredBy.inputs) {
        const range = /\b(\d+) to (\d+)\b/.exec(input.description)
        const atLeast = /a whole number, (\d+) or more/.exec(input.description)
        if (range === null && atLeast === null) continue
        checked++
        const low = Number(range?.[1] ?? atLeast?.[1])
        const accepted = range === null ? [low, low + 7] : [low, Number(range[2])]
        for (const value of accepted)
          expect(settingsWith({ [name]: String(value) }), `${name}: ${value}`).not.toBeInstanceOf(Error)
        const refused = [...(low > 0 ? [low - 1] : []), ...(range === null ? [] : [Number(range[2]) + 1])]
        for (const value of refused)
          expect(settingsWith({ [name]: String(value) }), `${name}: ${value}`).toBeInstanceOf(Error)
        if (atLeast !== null) expect(settingsWith({ [name]: `${low}.5` }), name).toBeInstanceOf(Error)
      }
      expect(checked).toBe(ranges)
    })

    it("says when the builder user must be trusted: the preflight's rule (Nix 2.16 on both ends) and local-jobs", () => {
      const user = declared(Input.User).description
      expect(user).not.toMatch(/must be a trusted user/)
      expect(user).toContain('older than 2.16')
      expect(user).toContain('`local-jobs` is above 0')
      const verdict = readFileSync(join(ROOT, 'src/builders/preflight-verdict.ts'), 'utf8')
      expect(verdict).toContain("const TRUST_NOT_NEEDED_FROM = '2.16'")
    })
  }
)
