import { StepError } from '../base/index.js'

/** A problem with one input that the user can fix; the message names the input first. */
export class InputError extends StepError {
  constructor(
    readonly input: string,
    detail: string
  ) {
    super(`Input '${input}': ${detail}`, `nix-offload: input ${input}`)
    this.name = 'InputError'
  }
}

/** A runner or builder state that stops the action, with the fix in the message; `topic` titles its annotation. */
export class SetupError extends StepError {
  constructor(message: string, topic: string) {
    super(message, `nix-offload: ${topic}`)
    this.name = 'SetupError'
  }
}
