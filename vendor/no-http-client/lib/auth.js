// See ../package.json.
export class BearerCredentialHandler {
  constructor(token) {
    this.token = token
  }
}
