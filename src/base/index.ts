/**
 * base: what every stage may use, and nothing about Nix or builders: starting processes (the one place that spawns,
 * with no echo of what it runs) and timing a phase for the debug log.
 * May import: nothing of the action's own.
 */

export { childEnvironment, runChecked, runCommand } from './process.js'
export { phase } from './timing.js'
