import type { BuilderOffer } from '../../../src/diagnosis/diagnosis.js'
import type { BuilderRequest } from '../../../src/inputs/settings.js'
import type { ConfiguredBuilder } from '../../../src/inputs/index.js'
import { builderWith } from './settings.js'

// The builder in each shape a stage hands it on, from builderWith's defaults (nixbuilder@builder.example.com:22, ssh-ng,
// x86_64-linux, pinned by `host-public-key`); tests override what they need.

/** A builder as the inputs describe it; a field may be `auto`, for the preflight to detect. */
export function requestWith(overrides: Partial<BuilderRequest> = {}): BuilderRequest {
  return { ...builderWith(), ...overrides }
}

/** A builder as the runner's ssh config names it: the `index`th of the run `token`, with its alias and store URI. */
export function configuredWith(
  index: number,
  overrides: Partial<ConfiguredBuilder> = {},
  token = 'a1b2c3'
): ConfiguredBuilder {
  const builder = builderWith(overrides)
  const alias = `nix-offload-${token}-${index}`
  return { ...builder, alias, storeUri: `${builder.protocol}://${builder.user}@${alias}`, ...overrides }
}

/** A builder as the diagnosis sees it: what it offers, under the label the user knows it by. */
export function offerWith(overrides: Partial<BuilderOffer> = {}): BuilderOffer {
  return {
    storeUri: 'ssh-ng://nixbuilder@nix-offload-a1b2c3-1',
    label: 'nixbuilder@builder.example.com:22',
    systems: ['x86_64-linux'],
    supportedFeatures: [],
    mandatoryFeatures: [],
    origin: "input 'host'",
    pinInput: 'host-public-key',
    ...overrides
  }
}
