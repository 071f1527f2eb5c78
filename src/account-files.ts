import { runCommand, runChecked } from './process.js'

/**
 * File operations as the account that opens the SSH connections: root (through `sudo -n`, since the runner user is
 * not root on hosted runners) or the action's own user. Coreutils do the work so both cases share one code path;
 * contents travel through stdin, never argv, so a key never shows in `ps`.
 */
export class AccountFiles {
  constructor(private readonly viaSudo: boolean) {}

  async exists(path: string): Promise<boolean> {
    const result = await this.run('test', ['-e', path])
    return result.code === 0
  }

  async read(path: string): Promise<Buffer> {
    return this.checked('cat', ['--', path])
  }

  /** Creates a file only its owner can read before the content arrives, then sets `mode`. */
  async create(path: string, content: Buffer | string, mode: number): Promise<void> {
    const octal = mode.toString(8)
    await this.checked('sh', ['-c', 'umask 077 && cat > "$1" && chmod "$2" "$1"', 'sh', path, octal], content)
  }

  /** Rewrites an existing file in place, so its owner, mode and inode stay as they were. */
  async overwrite(path: string, content: Buffer | string): Promise<void> {
    await this.checked('sh', ['-c', 'cat > "$1"', 'sh', path], content)
  }

  async mkdir(path: string): Promise<void> {
    await this.checked('mkdir', ['-m', '700', '--', path])
  }

  async remove(path: string): Promise<void> {
    await this.checked('rm', ['-f', '--', path])
  }

  async removeTree(path: string): Promise<void> {
    await this.checked('rm', ['-rf', '--', path])
  }

  /** Removes a directory only if it is empty; returns whether it did. */
  async removeEmptyDir(path: string): Promise<boolean> {
    const result = await this.run('rmdir', ['--', path])
    return result.code === 0
  }

  async command(command: string, args: string[]): Promise<void> {
    await this.checked(command, args)
  }

  /** Runs a command whose failure is fine (e.g. nothing to stop); returns whether it succeeded. */
  async attempt(command: string, args: string[]): Promise<boolean> {
    return (await this.run(command, args)).code === 0
  }

  private run(command: string, args: string[], input?: Buffer | string) {
    return this.viaSudo
      ? runCommand('sudo', ['-n', command, ...args], { input })
      : runCommand(command, args, { input })
  }

  private async checked(command: string, args: string[], input?: Buffer | string): Promise<Buffer> {
    return this.viaSudo
      ? runChecked('sudo', ['-n', command, ...args], { input })
      : runChecked(command, args, { input })
  }
}
