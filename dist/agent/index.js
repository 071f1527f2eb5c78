import { createRequire as __WEBPACK_EXTERNAL_createRequire } from "module";
var __webpack_exports__ = {};

;// CONCATENATED MODULE: external "node:fs"
const external_node_fs_namespaceObject = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:fs");
;// CONCATENATED MODULE: external "node:child_process"
const external_node_child_process_namespaceObject = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:child_process");
;// CONCATENATED MODULE: external "node:path"
const external_node_path_namespaceObject = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:path");
;// CONCATENATED MODULE: external "node:crypto"
const external_node_crypto_namespaceObject = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:crypto");
;// CONCATENATED MODULE: ./src/agent/blocks.ts

/** A file the action created for its block, which goes with the last job's block. */
const MADE = '# nix-offload: this file was made by the nix-offload action, and goes with the block of the last job\n';
/** The same, when the action created the file's directory too. */
const MADE_WITH_DIR = '# nix-offload: this file and its directory were made by the nix-offload action, and go with the block of the last job\n';
/**
 * A job's token: 128 random bits, so that no other job's block has it. Hex, as the marker lines' pattern expects
 * (`blockTokens`).
 */
function newToken() {
    return randomBytes(16).toString('hex');
}
const beginLine = (token) => `# nix-offload ${token}: begin`;
const endLine = (token) => `# nix-offload ${token}: end`;
/** Where this job's block starts and ends in `text` (its end marker line included, its newline not). */
function findBlock(text, token) {
    // The begin line at the start of a line: with a newline put before the text, its index is the line's own.
    const start = `\n${text}`.indexOf(`\n${beginLine(token)}`);
    if (start < 0)
        return undefined;
    const end = endLine(token);
    const endAt = text.indexOf(`\n${end}`, start);
    if (endAt < 0)
        return undefined;
    return [start, endAt + 1 + end.length];
}
/** The tokens of every job's block in `text`. */
function blockTokens(text) {
    return [...text.matchAll(/^# nix-offload ([0-9a-f]+): begin/gm)].map(match => match[1] ?? '');
}
/** The setting lines of every block, as a set: what the daemon would see of all the jobs together. */
function settingsOf(text) {
    const lines = new Set();
    for (const token of blockTokens(text)) {
        const found = findBlock(text, token);
        if (found === undefined)
            continue;
        for (const line of text.slice(found[0], found[1]).split('\n'))
            if (line.trim() !== '' && !line.startsWith('#'))
                lines.add(line.trim());
    }
    return [...lines].sort().join('\n');
}
/**
 * `text` with `block` on top (the block and its final newline) or at the end (a newline ending the last line, which
 * may have none, then the block without one). Either way the block's own bytes are the same few lines to take away.
 */
function withBlock(text, block, at) {
    const lines = block.replace(/\n$/, '');
    return at === 'top' ? `${lines}\n${text}` : `${text}\n${lines}`;
}
/** `text` without the block at `found`, and without the newline that came with it. */
function withoutBlock(text, found, at) {
    const [start, stop] = found;
    return at === 'top'
        ? text.slice(0, start) + text.slice(text[stop] === '\n' ? stop + 1 : stop)
        : text.slice(0, text[start - 1] === '\n' ? start - 1 : start) + text.slice(stop);
}
/** `text` with the block at `found` replaced by `block`. */
function withBlockReplaced(text, found, block) {
    return text.slice(0, found[0]) + block.replace(/\n$/, '') + text.slice(found[1]);
}

;// CONCATENATED MODULE: external "node:os"
const external_node_os_namespaceObject = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:os");
;// CONCATENATED MODULE: ./src/agent/lock.ts





/** Root's locks in a directory of root's own that every job on the host sees; a user's in their home directory. */
function defaultLockDir(uid = process.getuid?.() ?? 0, platform = process.platform) {
    if (uid === 0)
        return platform === 'darwin' ? '/var/run/nix-offload' : '/run/nix-offload';
    return (0,external_node_path_namespaceObject.join)((0,external_node_os_namespaceObject.homedir)(), '.cache', 'nix-offload', 'locks');
}
/**
 * Makes the lock directory (0700) if missing, and checks that it is a real directory of the agent's user that no one
 * else can write to: anyone who can create an entry there can plant a symlink where the agent opens its locks.
 */
function checkLockDir(dir) {
    try {
        (0,external_node_fs_namespaceObject.mkdirSync)(dir, { recursive: true, mode: 0o700 });
    }
    catch {
        // Something is there already: judged below, like a directory that was.
    }
    let stat;
    try {
        stat = (0,external_node_fs_namespaceObject.lstatSync)(dir);
    }
    catch (error) {
        throw new Error(`cannot make the lock directory ${dir}: ${error instanceof Error ? error.message : String(error)}`);
    }
    const uid = process.getuid?.() ?? 0;
    const problem = stat.isSymbolicLink()
        ? 'a symlink'
        : !stat.isDirectory()
            ? 'not a directory'
            : stat.uid !== uid
                ? `owned by uid ${stat.uid}`
                : (stat.mode & 0o077) !== 0
                    ? `open to others (mode ${(stat.mode & 0o777).toString(8)})`
                    : undefined;
    if (problem === undefined)
        return;
    throw new Error(`the lock directory ${dir} is ${problem}, not a directory of uid ${uid}'s own with mode 0700, so another user ` +
        `may have planted it: remove it (as uid ${uid}: rm -rf ${dir}); nix-offload makes it again`);
}
/** The lock file for a shared file, named by a hash of its real path (which may be long, or contain anything). */
function lockFileFor(dir, realPath) {
    return (0,external_node_path_namespaceObject.join)(dir, `${(0,external_node_crypto_namespaceObject.createHash)('sha256').update(realPath).digest('hex').slice(0, 32)}.lock`);
}
/** Takes the lock on `realPath`, waiting at most `waitMs` for another job to let go of it. */
function takeLock(realPath, options) {
    checkLockDir(options.dir);
    const path = lockFileFor(options.dir, realPath);
    const fd = openLockFile(path);
    try {
        waitForLock(fd, path, realPath, options);
        const holder = Buffer.from(`${options.holder}, pid ${process.pid}, since ${new Date().toISOString()}\n`);
        (0,external_node_fs_namespaceObject.ftruncateSync)(fd, 0);
        (0,external_node_fs_namespaceObject.writeSync)(fd, holder, 0, holder.length, 0);
    }
    catch (error) {
        (0,external_node_fs_namespaceObject.closeSync)(fd);
        throw error;
    }
    return { path, release: () => (0,external_node_fs_namespaceObject.closeSync)(fd) };
}
function openLockFile(path) {
    let fd;
    try {
        // O_NOFOLLOW: a symlink at the lock's path is an error (ELOOP), never followed to where it points.
        fd = (0,external_node_fs_namespaceObject.openSync)(path, external_node_fs_namespaceObject.constants.O_RDWR | external_node_fs_namespaceObject.constants.O_CREAT | external_node_fs_namespaceObject.constants.O_NOFOLLOW, 0o600);
    }
    catch (error) {
        throw new Error(`cannot open the lock file ${path}: ${error instanceof Error ? error.message : String(error)}`);
    }
    const stat = (0,external_node_fs_namespaceObject.fstatSync)(fd);
    if (!stat.isFile() || stat.uid !== (process.getuid?.() ?? 0)) {
        (0,external_node_fs_namespaceObject.closeSync)(fd);
        throw new Error(`the lock file ${path} is not a file of the agent's own user: remove it`);
    }
    return fd;
}
/** Locks fd 3 of the tool, waiting at most the bound (perl: an alarm), and exits: 0 locked, 1 timed out. */
const PERL_LOCK = 'open(my $f, ">&=", 3) or die "fd 3: $!\\n"; $SIG{ALRM} = sub { exit 1 }; alarm($ARGV[0]); ' +
    'flock($f, LOCK_EX) or exit($!{EINTR} ? 1 : 2); alarm(0); exit 0';
function waitForLock(fd, path, realPath, options) {
    const tool = options.tool ?? (process.platform === 'darwin' ? 'perl' : 'flock');
    const seconds = String(options.waitMs / 1000);
    const [command, args] = tool === 'perl'
        ? ['perl', ['-MFcntl=:flock', '-MTime::HiRes=alarm', '-e', PERL_LOCK, seconds]]
        : ['flock', ['-w', seconds, '3']];
    const result = (0,external_node_child_process_namespaceObject.spawnSync)(command, args, {
        stdio: ['ignore', 'ignore', 'pipe', fd],
        // The tool's own bound comes first; this one is for a tool that hangs.
        timeout: options.waitMs + 10_000,
        ...(options.env === undefined ? {} : { env: options.env })
    });
    if (result.status === 0)
        return;
    if (result.status === 1)
        throw new Error(`another nix-offload job has held the lock on ${realPath} for over ${seconds} s ` +
            `(lock file ${path}, held by ${holderOf(fd)})`);
    const why = result.error?.message ?? (result.stderr.toString().trim() || `exit ${String(result.status)}`);
    throw new Error(`cannot lock ${path} with ${command}: ${why}`);
}
function holderOf(fd) {
    const buffer = Buffer.alloc(512);
    const length = (0,external_node_fs_namespaceObject.readSync)(fd, buffer, 0, buffer.length, 0);
    return buffer.subarray(0, length).toString().trim() || 'a job that has not said who it is';
}

;// CONCATENATED MODULE: ./src/agent/replace.ts



/**
 * The path a shared file is edited at: its directory's real path and its own name. The file itself must not be a
 * symlink, and neither it nor its directory may be in the Nix store: nix-darwin and home-manager make nix.conf a link
 * into the store, which root must never rewrite, and renaming a new file over a link's target would change a file
 * that is not the one named.
 */
function editablePath(path, storeDir = '/nix/store') {
    const stat = lstatOrUndefined(path);
    const dir = (0,external_node_path_namespaceObject.dirname)(path);
    const real = (0,external_node_path_namespaceObject.join)((0,external_node_fs_namespaceObject.existsSync)(dir) ? (0,external_node_fs_namespaceObject.realpathSync)(dir) : dir, (0,external_node_path_namespaceObject.basename)(path));
    if (stat?.isSymbolicLink() === true) {
        const target = (0,external_node_fs_namespaceObject.readlinkSync)(path);
        const inStore = `${realpathOr(path)}/`.startsWith(`${storeDir}/`);
        throw new Error(`${path} is a symlink (to ${target}${inStore ? ', in the Nix store' : ''}), which nix-offload does not write ` +
            `through. ${AVOID}`);
    }
    if (`${real}/`.startsWith(`${storeDir}/`))
        throw new Error(`${path} is in the Nix store (${real}). ${AVOID}`);
    if (stat !== undefined && !stat.isFile())
        throw new Error(`${path} is not a regular file`);
    return real;
}
const AVOID = 'The strategy that needs no file of root’s avoids it: `strategy: remote-store`, or make the runner user ' +
    'trusted; or make it a regular file that root owns.';
/** A regular file's text and status, read without following a symlink; undefined when there is none. */
function readRegular(path) {
    let fd;
    try {
        fd = (0,external_node_fs_namespaceObject.openSync)(path, external_node_fs_namespaceObject.constants.O_RDONLY | external_node_fs_namespaceObject.constants.O_NOFOLLOW);
    }
    catch (error) {
        if (error instanceof Error && 'code' in error && error.code === 'ENOENT')
            return undefined;
        throw error;
    }
    try {
        const stat = (0,external_node_fs_namespaceObject.fstatSync)(fd);
        if (!stat.isFile())
            throw new Error(`${path} is not a regular file`);
        return { text: (0,external_node_fs_namespaceObject.readFileSync)(fd, 'utf8'), stat };
    }
    finally {
        (0,external_node_fs_namespaceObject.closeSync)(fd);
    }
}
/**
 * Writes a new file beside `path` and renames it over, so a reader sees the old file or the new one whole. It keeps
 * the old file's owner and mode (`mode` for a new file). The temporary file's name is random and opened with O_EXCL
 * and O_NOFOLLOW, so nothing another user planted beside the file is written through.
 */
function replaceFile(path, text, options) {
    const temporary = `${path}.nix-offload-${(0,external_node_crypto_namespaceObject.randomBytes)(8).toString('hex')}.tmp`;
    const flags = external_node_fs_namespaceObject.constants.O_WRONLY | external_node_fs_namespaceObject.constants.O_CREAT | external_node_fs_namespaceObject.constants.O_EXCL | external_node_fs_namespaceObject.constants.O_NOFOLLOW;
    const fd = (0,external_node_fs_namespaceObject.openSync)(temporary, flags, 0o600);
    try {
        const data = Buffer.from(text);
        let offset = 0;
        while (offset < data.length)
            offset += (0,external_node_fs_namespaceObject.writeSync)(fd, data, offset, data.length - offset);
        if (options.old !== undefined)
            keepOwner(fd, options.old);
        (0,external_node_fs_namespaceObject.fchmodSync)(fd, options.old === undefined ? options.mode : options.old.mode & 0o7777);
        (0,external_node_fs_namespaceObject.fsyncSync)(fd);
    }
    catch (error) {
        (0,external_node_fs_namespaceObject.closeSync)(fd);
        (0,external_node_fs_namespaceObject.unlinkSync)(temporary);
        throw error;
    }
    (0,external_node_fs_namespaceObject.closeSync)(fd);
    try {
        if (lstatOrUndefined(path)?.isSymbolicLink() === true)
            throw new Error(`${path} became a symlink`);
        (0,external_node_fs_namespaceObject.renameSync)(temporary, path);
    }
    catch (error) {
        (0,external_node_fs_namespaceObject.unlinkSync)(temporary);
        throw error;
    }
}
function keepOwner(fd, old) {
    try {
        (0,external_node_fs_namespaceObject.fchownSync)(fd, old.uid, old.gid);
    }
    catch (error) {
        // Only root can give a file away; a user's own files are theirs already.
        if (process.getuid?.() === 0)
            throw error;
    }
}
function lstatOrUndefined(path) {
    try {
        return (0,external_node_fs_namespaceObject.lstatSync)(path);
    }
    catch {
        return undefined;
    }
}
function realpathOr(path) {
    try {
        return (0,external_node_fs_namespaceObject.realpathSync)(path);
    }
    catch {
        return path;
    }
}

;// CONCATENATED MODULE: ./src/agent/agent.ts






/**
 * Carries out the operations in order and says how each went; it stops at the first failure unless `keepGoing`. As
 * root it is one `sudo node` for a whole plan instead of a sudo round trip per file, with the operations on stdin.
 */
function runAgent(request, context = { env: process.env }) {
    const results = [];
    for (const op of request.ops) {
        try {
            results.push(runOp(op, request, context));
        }
        catch (error) {
            results.push({ ok: false, error: error instanceof Error ? error.message : String(error) });
            if (!request.keepGoing)
                break;
        }
    }
    return results;
}
function runOp(op, request, context) {
    switch (op.op) {
        case 'read-if-exists':
            return (0,external_node_fs_namespaceObject.existsSync)(op.path)
                ? { ok: true, exists: true, data: (0,external_node_fs_namespaceObject.readFileSync)(op.path).toString('base64') }
                : { ok: true, exists: false };
        case 'create':
            writeNoFollow(op.path, op.data, external_node_fs_namespaceObject.constants.O_CREAT | external_node_fs_namespaceObject.constants.O_EXCL, op.mode);
            return { ok: true };
        case 'overwrite':
            writeNoFollow(op.path, op.data, external_node_fs_namespaceObject.constants.O_CREAT | external_node_fs_namespaceObject.constants.O_TRUNC);
            return { ok: true };
        case 'mkdir':
            (0,external_node_fs_namespaceObject.mkdirSync)(op.path, { mode: 0o700 });
            return { ok: true };
        case 'remove-tree':
            (0,external_node_fs_namespaceObject.rmSync)(op.path, { recursive: true, force: true });
            return { ok: true };
        case 'attempt': {
            const [command = 'true', ...args] = op.argv;
            const { status } = (0,external_node_child_process_namespaceObject.spawnSync)(command, args, { stdio: 'ignore', timeout: 10_000, env: context.env });
            return { ok: status === 0 };
        }
        default:
            return blockOp(op, request, context);
    }
}
/** Writes base64 `data` to `path` through no symlink, unreadable to others until it is given `mode`. */
function writeNoFollow(path, data, flags, mode) {
    const fd = (0,external_node_fs_namespaceObject.openSync)(path, external_node_fs_namespaceObject.constants.O_WRONLY | external_node_fs_namespaceObject.constants.O_NOFOLLOW | flags, 0o600);
    try {
        const bytes = Buffer.from(data, 'base64');
        let offset = 0;
        while (offset < bytes.length)
            offset += (0,external_node_fs_namespaceObject.writeSync)(fd, bytes, offset, bytes.length - offset);
        if (mode !== undefined)
            (0,external_node_fs_namespaceObject.fchmodSync)(fd, mode);
    }
    finally {
        (0,external_node_fs_namespaceObject.closeSync)(fd);
    }
}
function blockOp(op, request, context) {
    const path = editablePath(op.path);
    const lock = takeLock(path, {
        dir: request.lockDir ?? defaultLockDir(),
        waitMs: request.lockWaitMs,
        holder: `job ${op.token}`,
        env: context.env,
        ...(context.lockTool === undefined ? {} : { tool: context.lockTool })
    });
    try {
        if (op.op === 'add-block')
            return addBlock(op, path, context);
        if (op.op === 'set-block')
            return setBlock(op, path);
        return removeBlock(op, path, context);
    }
    finally {
        lock.release();
    }
}
function addBlock(op, path, context) {
    const old = readRegular(path);
    const before = old?.text ?? '';
    // A token is 128 random bits: a block that has it already is not this job's to take over, or to take away later.
    if (findBlock(before, op.token) !== undefined)
        throw new Error(`a block with this job's token already exists in ${path}`);
    let text = before;
    if (old === undefined) {
        const dir = (0,external_node_path_namespaceObject.dirname)(path);
        const madeDir = !(0,external_node_fs_namespaceObject.existsSync)(dir);
        if (madeDir)
            (0,external_node_fs_namespaceObject.mkdirSync)(dir, { mode: 0o700 });
        text = madeDir ? MADE_WITH_DIR : MADE;
    }
    const after = withBlock(text, op.text, op.at);
    replaceFile(path, after, { mode: op.mode, ...(old === undefined ? {} : { old: old.stat }) });
    return { ok: true, restarted: restartIf(op.restart, before, after, context) };
}
function setBlock(op, path) {
    const old = readRegular(path);
    const found = old === undefined ? undefined : findBlock(old.text, op.token);
    if (old === undefined || found === undefined)
        throw new Error(`no block of ${op.token} in ${path}`);
    replaceFile(path, withBlockReplaced(old.text, found, op.text), { mode: 0o600, old: old.stat });
    return { ok: true };
}
function removeBlock(op, path, context) {
    const old = readRegular(path);
    const before = old?.text ?? '';
    const found = findBlock(before, op.token);
    if (old === undefined || found === undefined)
        return { ok: true, others: blockTokens(before).length };
    const after = withoutBlock(before, found, op.at);
    if (after === MADE || after === MADE_WITH_DIR) {
        (0,external_node_fs_namespaceObject.unlinkSync)(path);
        const dir = (0,external_node_path_namespaceObject.dirname)(path);
        if (after === MADE_WITH_DIR && (0,external_node_fs_namespaceObject.readdirSync)(dir).length === 0)
            (0,external_node_fs_namespaceObject.rmdirSync)(dir);
    }
    else
        replaceFile(path, after, { mode: 0o600, old: old.stat });
    const now = readRegular(path)?.text ?? '';
    if (findBlock(now, op.token) !== undefined)
        throw new Error(`its block is still in ${path}`);
    return { ok: true, others: blockTokens(now).length, restarted: restartIf(op.restart, before, now, context) };
}
/** Runs `argv` when the settings of all blocks together changed: the nix-daemon reads nix.conf only at start. */
function restartIf(argv, before, after, context) {
    if (argv === undefined || settingsOf(before) === settingsOf(after))
        return false;
    const [command = 'true', ...args] = argv;
    const { status } = (0,external_node_child_process_namespaceObject.spawnSync)(command, args, { stdio: 'ignore', timeout: 120_000, env: context.env });
    if (status !== 0)
        throw new Error(`${argv.join(' ')} failed (exit ${String(status)})`);
    return true;
}

;// CONCATENATED MODULE: ./src/base/json.ts
/** A parsed JSON object (not an array, not null), whose fields can then be read one by one. */
function isRecord(value) {
    return typeof value === 'object' && value !== null && !Array.isArray(value);
}

;// CONCATENATED MODULE: ./src/agent/request.ts

/** The request on the agent's stdin, checked field by field before root acts on any of it. */
function parseRequest(text) {
    const value = JSON.parse(text);
    if (!isRecord(value) || !Array.isArray(value.ops))
        throw new Error('the file agent needs { ops: [...] } on stdin');
    const { keepGoing, lockDir, lockWaitMs } = value;
    if (typeof keepGoing !== 'boolean')
        throw new Error('keepGoing: not true or false');
    if (typeof lockWaitMs !== 'number' || !(lockWaitMs > 0))
        throw new Error('lockWaitMs: not a positive number');
    const request = { ops: value.ops.map(parseOp), keepGoing, lockWaitMs };
    if (lockDir !== undefined)
        request.lockDir = absolute(lockDir, 'lockDir');
    return request;
}
function parseOp(value, index) {
    if (!isRecord(value))
        throw new Error(`operation ${index}: not an object`);
    const field = `operation ${index} (${String(value.op)})`;
    const path = () => absolute(value.path, `${field}: path`);
    const text = (key) => {
        const found = value[key];
        if (typeof found !== 'string')
            throw new Error(`${field}: ${key} is not text`);
        return found;
    };
    const mode = () => {
        if (typeof value.mode !== 'number' ||
            !Number.isInteger(value.mode) ||
            value.mode < 0 ||
            value.mode > 0o7777)
            throw new Error(`${field}: mode is not a file mode`);
        return value.mode;
    };
    const token = () => {
        if (typeof value.token !== 'string' || !/^[0-9a-f]+$/.test(value.token))
            throw new Error(`${field}: token is not lowercase hex`);
        return value.token;
    };
    const at = () => {
        if (value.at !== 'top' && value.at !== 'end')
            throw new Error(`${field}: at is not top or end`);
        return value.at;
    };
    const restart = () => value.restart === undefined ? {} : { restart: argv(value.restart, `${field}: restart`) };
    switch (value.op) {
        case 'read-if-exists':
        case 'mkdir':
        case 'remove-tree':
            return { op: value.op, path: path() };
        case 'create':
            return { op: 'create', path: path(), data: text('data'), mode: mode() };
        case 'overwrite':
            return { op: 'overwrite', path: path(), data: text('data') };
        case 'attempt':
            return { op: 'attempt', argv: argv(value.argv, `${field}: argv`) };
        case 'add-block':
            return {
                op: 'add-block',
                path: path(),
                token: token(),
                text: text('text'),
                at: at(),
                mode: mode(),
                ...restart()
            };
        case 'set-block':
            return { op: 'set-block', path: path(), token: token(), text: text('text') };
        case 'remove-block':
            return { op: 'remove-block', path: path(), token: token(), at: at(), ...restart() };
        default:
            throw new Error(`${field}: no such operation`);
    }
}
function absolute(value, field) {
    if (typeof value !== 'string' || !value.startsWith('/') || value.includes('\0'))
        throw new Error(`${field}: not an absolute path`);
    return value;
}
function argv(value, field) {
    if (!Array.isArray(value) || value.length === 0)
        throw new Error(`${field}: not a command`);
    return value.map(word => {
        if (typeof word !== 'string')
            throw new Error(`${field}: not a list of words`);
        return word;
    });
}

;// CONCATENATED MODULE: ./src/agent/main.ts



// The file agent's own bundle (dist/agent), which `sudo -n node` runs as root: the request on stdin, results on stdout.
process.stdout.write(JSON.stringify(runAgent(parseRequest((0,external_node_fs_namespaceObject.readFileSync)(0, 'utf8')))));

