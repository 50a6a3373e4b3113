import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { lstat, mkdir, readFile, readlink, rename, rm, stat, symlink, unlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

/**
 * "The previous main": the commit this tree must interoperate with on the wire and on disk, as the compat tests run
 * it. Upgrades are rolling (a DaemonSet replaces nodes one by one), so for a while agents and seeders of the previous
 * release and of this one share a swarm and data dirs; the tests start both from this one checkout.
 */

/** The repository this file is in. */
export const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url))
/** Names the commit, relative to the repository root; moved forward when a release lands. */
export const PREVIOUS_MAIN_FILE = 'test/compat/previous-main'

/** The previous main could not be made ready to run. The message is one line that says what to do. */
export class PreviousMainError extends Error {
  override readonly name = 'PreviousMainError'
  readonly code = 'HARNESS_PREVIOUS_MAIN'
}

/** A tree of Shoal sources that can be run: this checkout, or the previous main materialised from git. */
export interface ShoalTree {
  /** `new` (this checkout) or `previous` (the commit of PREVIOUS_MAIN_FILE), for messages. */
  readonly label: 'new' | 'previous'
  readonly root: string
  /** The full commit id (the previous main only). */
  readonly commit?: string
  /** Its `bin/shoal.js`, run with the Node that runs the tests (the project's Node 24). */
  readonly bin: string
}

export const currentTree: ShoalTree = { label: 'new', root: REPO_ROOT, bin: join(REPO_ROOT, 'bin', 'shoal.js') }

/** The commit PREVIOUS_MAIN_FILE names: its one line that is not blank or a `#` comment. */
export async function previousMainCommit(): Promise<string> {
  const text = await readFile(join(REPO_ROOT, PREVIOUS_MAIN_FILE), 'utf8')
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
  if (lines.length !== 1 || !/^[0-9a-f]{40}$/.test(lines[0]!))
    throw new PreviousMainError(`${PREVIOUS_MAIN_FILE} must hold one full 40-hex commit id (and # comments)`)
  return lines[0]!
}

let materialised: Promise<ShoalTree> | undefined

/**
 * The previous main's source tree, ready to run: `git archive <commit> | tar -x` into a directory of the temp dir
 * named by the commit (made once, then reused by every test and run), with this checkout's `node_modules` linked in
 * when both package-lock.json files lock the same packages. Fails with one line saying what to do when the commit
 * is not in this clone (a shallow one) or the dependencies differ.
 */
export function previousMainTree(): Promise<ShoalTree> {
  materialised ??= materialise()
  // A failure is not kept: the next test tries again (after a `git fetch --unshallow`, say).
  materialised.catch(() => (materialised = undefined))
  return materialised
}

async function materialise(): Promise<ShoalTree> {
  const commit = await previousMainCommit()
  await ensureCommit(commit)
  const root = join(await privateTempDir(), commit)
  if (!(await exists(join(root, '.complete')))) await extract(commit, root)
  await linkDependencies(commit, root)
  return { label: 'previous', root, commit, bin: join(root, 'bin', 'shoal.js') }
}

async function ensureCommit(commit: string): Promise<void> {
  const found = await git(['cat-file', '-e', `${commit}^{commit}`]).then(
    () => true,
    () => false,
  )
  if (found) return
  const shallow = await git(['rev-parse', '--is-shallow-repository']).then(
    (out) => out.trim() === 'true',
    () => undefined,
  )
  if (shallow === undefined)
    throw new PreviousMainError(
      `the compat tests need this tree's git history (${PREVIOUS_MAIN_FILE} names ${commit}), and ${REPO_ROOT} is not a git clone: run them in a clone`,
    )
  throw new PreviousMainError(
    shallow
      ? `commit ${commit} (${PREVIOUS_MAIN_FILE}) is not in this shallow clone: run \`git fetch --unshallow\``
      : `commit ${commit} (${PREVIOUS_MAIN_FILE}) is not in this clone: run \`git fetch\` (or the file names a commit that was never on main)`,
  )
}

/**
 * A directory of the temp dir that only this user may write: the tree extracted there is code the tests run, so
 * another user must not be able to plant one before us.
 */
async function privateTempDir(): Promise<string> {
  const dir = join(tmpdir(), `shoal-previous-main-${process.getuid?.() ?? 'user'}`)
  await mkdir(dir, { recursive: true, mode: 0o700 })
  const st = await lstat(dir)
  const uid = process.getuid?.()
  if (!st.isDirectory() || (uid !== undefined && st.uid !== uid) || (st.mode & 0o022) !== 0)
    throw new PreviousMainError(`${dir} is not a directory that only this user can write: remove it`)
  return dir
}

/** Extracts into a fresh sibling and renames it into place, so a run that dies half way leaves nothing to reuse. */
async function extract(commit: string, root: string): Promise<void> {
  const temp = `${root}.${process.pid}.${Date.now()}`
  await mkdir(temp, { recursive: true })
  try {
    const archive = spawn('git', ['archive', '--format=tar', commit], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    const tar = spawn('tar', ['-x', '-C', temp], { stdio: ['pipe', 'ignore', 'pipe'] })
    archive.stdout.pipe(tar.stdin)
    // tar dying early breaks the pipe: its exit code says so below, not an unhandled EPIPE.
    tar.stdin.on('error', () => {})
    let errors = ''
    archive.stderr.on('data', (b: Buffer) => (errors += b.toString()))
    tar.stderr.on('data', (b: Buffer) => (errors += b.toString()))
    const [[archiveCode], [tarCode]] = (await Promise.all([once(archive, 'close'), once(tar, 'close')])) as [
      [number | null],
      [number | null],
    ]
    if (archiveCode !== 0 || tarCode !== 0)
      throw new PreviousMainError(`git archive ${commit} | tar -x failed: ${errors.trim().replaceAll('\n', ' ')}`)
    await writeFile(join(temp, '.complete'), `${commit}\n`)
    await rename(temp, root).catch(async (err: NodeJS.ErrnoException) => {
      // Another test process extracted it first: theirs is as good as ours.
      if (!(await exists(join(root, '.complete')))) throw err
    })
  } finally {
    await rm(temp, { recursive: true, force: true })
  }
}

/**
 * Links this checkout's node_modules into the previous tree when both lock files lock the same packages. A tree
 * given its own (`npm ci` there, when they differ) is used as it is.
 */
async function linkDependencies(commit: string, root: string): Promise<void> {
  const link = join(root, 'node_modules')
  const ours = join(REPO_ROOT, 'node_modules')
  const current = await lstat(link).catch(() => undefined)
  if (current?.isDirectory() === true) return
  const difference = lockDifference(
    JSON.parse(await readFile(join(REPO_ROOT, 'package-lock.json'), 'utf8')) as LockFile,
    JSON.parse(await readFile(join(root, 'package-lock.json'), 'utf8')) as LockFile,
  )
  if (difference !== undefined) {
    // Never leave a link to packages the tree was not built with.
    if (current?.isSymbolicLink() === true) await unlink(link)
    throw new PreviousMainError(
      `previous main ${commit.slice(0, 12)} locks other dependencies than this tree (${difference}): give it its own with \`npm ci --prefix ${root}\``,
    )
  }
  if (current?.isSymbolicLink() === true && (await readlink(link)) === ours) return
  if (current !== undefined) await unlink(link)
  await symlink(ours, link, 'dir').catch(async (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EEXIST' || (await readlink(link)) !== ours) throw err
  })
}

interface LockFile {
  readonly packages?: Record<string, Record<string, unknown>>
}

/**
 * Where two package-lock.json files disagree on what is installed: every package's version, source and integrity,
 * and the root's declared dependencies (not its own name or version). Undefined when they agree.
 */
export function lockDifference(ours: LockFile, theirs: LockFile): string | undefined {
  const installed = (lock: LockFile): Map<string, string> => {
    const out = new Map<string, string>()
    for (const [path, entry] of Object.entries(lock.packages ?? {})) {
      const fields =
        path === ''
          ? ['dependencies', 'devDependencies', 'optionalDependencies', 'peerDependencies']
          : ['version', 'resolved', 'integrity', 'link', 'optional', 'dev']
      out.set(path, JSON.stringify(fields.map((f) => entry[f] ?? null)))
    }
    return out
  }
  const a = installed(ours)
  const b = installed(theirs)
  const differing = [...new Set([...a.keys(), ...b.keys()])].filter((k) => a.get(k) !== b.get(k)).sort()
  if (differing.length === 0) return undefined
  const describe = (k: string): string => {
    const version = (lock: LockFile) =>
      lock.packages?.[k]?.['version'] ?? (lock.packages?.[k] === undefined ? 'absent' : 'other')
    return k === '' ? 'the root dependencies' : `${k}: ${String(version(ours))} here, ${String(version(theirs))} there`
  }
  return `${describe(differing[0]!)}${differing.length > 1 ? `, and ${differing.length - 1} more` : ''}`
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  )
}

async function git(args: readonly string[]): Promise<string> {
  const child = spawn('git', args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.on('data', (b: Buffer) => (out += b.toString()))
  const [code] = (await once(child, 'close')) as [number | null]
  if (code !== 0) throw new Error(`git ${args.join(' ')} exited ${code}`)
  return out
}
