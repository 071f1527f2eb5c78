/**
 * base: what every stage may use, and nothing about Nix or builders: starting processes (the one place that spawns,
 * with no echo of what it runs), timing a phase for the debug log, and a guard for parsed JSON objects.
 * May import: nothing of the action's own.
 */

export {
  childEnvironment,
  type CommandResult,
  type Companion,
  runChecked,
  runCommand,
  shellQuote,
  startCompanion,
  stderrTail
} from './process.js'
export { logInfo, safeLine, safeText } from './safe-text.js'
export { phase } from './timing.js'
export { isRecord } from './json.js'
