// See ../package.json: only @actions/core's OIDC client reaches this, and nix-offload never asks for an OIDC token.
export class HttpClient {
  constructor() {
    throw new Error(
      'nix-offload bundles no HTTP client for @actions/core: core.getIDToken() is not available'
    )
  }
}
