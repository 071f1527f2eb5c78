/**
 * diagnosis: Nix's remote-build failure messages classified into causes with fixes. The wordings are data: one row per
 * wording in diagnosis-rules.ts (with the Nix/Lix versions that print it), the messages they write in
 * diagnosis-messages.ts, the vocabulary in diagnosis-types.ts; diagnosis.ts applies the rows and reconciles findings.
 * May import: base, inputs, nix.
 */

export { builderOffer, diagnose, type Diagnosis, orderDiagnoses } from './diagnosis.js'
export { outcomeContext, type RetryDecision, retryDecision, TRANSIENT } from './retry.js'
