import ssh2 from 'ssh2'

/**
 * Calls `generate` (ssh2's key generator) until ssh2 reads back the private key it made, with `passphrase` for an
 * encrypted one: the generator writes a malformed key about once in 200 ed25519 keys (ssh-keygen refuses those too,
 * "error in libcrypto"), which made tests fail at random.
 */
export function readableKeyPair(
  generate: () => { private: string; public: string },
  passphrase?: string
): { private: string; public: string } {
  for (;;) {
    const pair = generate()
    if (!(ssh2.utils.parseKey(pair.private, passphrase) instanceof Error)) return pair
  }
}

/** An ed25519 pair whose private key is encrypted with `passphrase` (aes256-ctr, 16 bcrypt rounds), readable by ssh2. */
export function encryptedKeyPair(passphrase: string): { private: string; public: string } {
  return readableKeyPair(
    () => ssh2.utils.generateKeyPairSync('ed25519', { passphrase, cipher: 'aes256-ctr', rounds: 16 }),
    passphrase
  )
}
