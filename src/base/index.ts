/**
 * base: what every stage may use, and nothing about Nix or builders: starting processes (the one place that spawns,
 * with no echo of what it runs) and stopping those a killed main step left running, printing the step's log (the one
 * place that prints: a group per phase, annotations outside them), an ssh-agent that holds a private key off the
 * disk, how the step fails (each error annotated once), timing a phase for the debug log, and a guard for parsed JSON
 * objects.
 * May import: nothing of the action's own.
 */

export {
  childEnvironment,
  type ChildTracker,
  type CommandResult,
  type Companion,
  runChecked,
  runCommand,
  shellQuote,
  startCompanion,
  stderrTail,
  trackChildren
} from './process.js'
export { type ProcessRecord, startTimeOf, stopProcesses } from './processes.js'
export { emptyAgentCommand, startKeyAgent, stopKeyAgent } from './ssh-agent.js'
export { AnnotatedFailure, failStep, StepError } from './failure.js'
export { safeLine, safeText } from './safe-text.js'
export {
  endGroup,
  inGroup,
  logDebug,
  logError,
  logInfo,
  logLine,
  logNotice,
  logWarning,
  Phase,
  startGroup,
  stopCommands,
  writeSummary
} from './step-log.js'
export { phase } from './timing.js'
export { isRecord } from './json.js'
