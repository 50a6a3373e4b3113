import { createHash, randomBytes } from 'node:crypto'
import { chmod, mkdir, readFile, rename, rm, rmdir, stat, unlink, writeFile } from 'node:fs/promises'
import { dirname, join, sep } from 'node:path'

/**
 * The file engine behind `shoal configure`: it only moves bytes under a root and keeps, per tool, a record of
 * what it wrote and a copy of what was there before, under `<root>/var/lib/shoal/configure/<tool>/`. The tools'
 * own modules decide what the files should hold; this module makes writing them idempotent and undoable.
 */

/** A file as `configure` wants it, by its path relative to the root (`etc/docker/daemon.json`). */
export interface DesiredFile {
  readonly path: string
  readonly content: Buffer
}

/** One file to change: `after` undefined removes it. */
export interface FileChange {
  readonly path: string
  readonly before: Buffer | undefined
  readonly after: Buffer | undefined
}

export interface UndoPlan {
  readonly changes: readonly FileChange[]
  /** Files edited since `configure` wrote them: left alone. */
  readonly warnings: readonly string[]
  /** Records kept after the undo (the files left alone). */
  readonly keep: readonly string[]
  /** Records to drop. */
  readonly drop: readonly string[]
}

interface FileRecord {
  /** Whether the file existed before the first write; if so its bytes are in the backup folder. */
  readonly existed: boolean
  readonly mode?: number
  /** sha256 of the bytes last written, to tell a file edited since. */
  readonly written: string
}

interface State {
  readonly version: 1
  readonly files: Record<string, FileRecord>
  /** Folders created by `configure`, removed again (when empty) by an undo. */
  readonly dirs: string[]
}

export const STATE_DIR = 'var/lib/shoal/configure'

export function stateDir(root: string, tool: string): string {
  return join(root, STATE_DIR, tool)
}

/** The files whose bytes differ from what is wanted. */
export async function planApply(root: string, desired: readonly DesiredFile[]): Promise<FileChange[]> {
  const changes: FileChange[] = []
  for (const d of desired) {
    const before = await readIfExists(join(root, checkPath(d.path)))
    if (before === undefined || !before.equals(d.content)) changes.push({ path: d.path, before, after: d.content })
  }
  return changes
}

/** Writes the changes, backing up each file the first time `configure` touches it. */
export async function commitApply(root: string, tool: string, changes: readonly FileChange[]): Promise<void> {
  if (changes.length === 0) return
  const state = await readState(root, tool)
  // The state folder's own parents count too, so a full undo leaves no `var/lib/shoal` that was not there.
  for (const created of await makeDirs(root, `${STATE_DIR}/${tool}`)) state.dirs.push(created)
  for (const c of changes) {
    if (c.after === undefined) throw new Error(`configure: ${c.path}: an apply never removes a file`)
    const target = join(root, checkPath(c.path))
    let record = state.files[c.path]
    if (record === undefined) {
      const mode = c.before === undefined ? undefined : (await stat(target)).mode & 0o7777
      if (c.before !== undefined) await atomicWrite(join(stateDir(root, tool), 'backup', c.path), c.before, 0o600)
      record = { existed: c.before !== undefined, ...(mode === undefined ? {} : { mode }), written: '' }
    }
    for (const created of await makeDirs(root, dirname(c.path)))
      if (!state.dirs.includes(created)) state.dirs.push(created)
    await atomicWrite(target, c.after, record.mode ?? 0o644)
    state.files[c.path] = { ...record, written: sha256(c.after) }
    // The record is saved after every file, so an interrupted run can still be undone.
    await writeState(root, tool, state)
  }
}

/**
 * What an undo would do: restore each file `configure` changed to its earlier bytes, remove each file it
 * created, and leave alone (with a warning) each file edited since. `only` limits it to some paths.
 */
export async function planUndo(root: string, tool: string, only?: (path: string) => boolean): Promise<UndoPlan> {
  const state = await readState(root, tool)
  const changes: FileChange[] = []
  const warnings: string[] = []
  const keep: string[] = []
  const drop: string[] = []
  for (const [path, record] of Object.entries(state.files)) {
    if (only !== undefined && !only(path)) continue
    const current = await readIfExists(join(root, checkPath(path)))
    if (current === undefined && !record.existed) {
      drop.push(path)
      continue
    }
    if (current === undefined || sha256(current) !== record.written) {
      const backup = record.existed ? `; its earlier bytes are in ${join(STATE_DIR, tool, 'backup', path)}` : ''
      warnings.push(
        `${path} was ${current === undefined ? 'removed' : 'edited'} since configure wrote it: left alone${backup}`,
      )
      keep.push(path)
      continue
    }
    const after = record.existed ? await readFile(join(stateDir(root, tool), 'backup', path)) : undefined
    changes.push({ path, before: current, after })
    drop.push(path)
  }
  return { changes, warnings, keep, drop }
}

export async function commitUndo(root: string, tool: string, plan: UndoPlan): Promise<void> {
  const state = await readState(root, tool)
  for (const c of plan.changes) {
    const target = join(root, checkPath(c.path))
    const record = state.files[c.path]
    if (c.after === undefined) await unlink(target).catch(ignoreMissing)
    else await atomicWrite(target, c.after, record?.mode ?? 0o644)
  }
  for (const path of plan.drop) {
    delete state.files[path]
    await unlink(join(stateDir(root, tool), 'backup', checkPath(path))).catch(ignoreMissing)
  }
  const remaining = Object.keys(state.files)
  if (remaining.length === 0) await rm(stateDir(root, tool), { recursive: true, force: true })
  // Folders configure created go again when nothing else lives in them, deepest first.
  for (const dir of [...state.dirs].sort((a, b) => b.length - a.length)) {
    if (remaining.some((p) => p.startsWith(`${dir}/`))) continue
    if (await removeEmptyDir(join(root, dir))) state.dirs.splice(state.dirs.indexOf(dir), 1)
  }
  if (remaining.length > 0) await writeState(root, tool, state)
}

/** Rejects paths that could leave the root: every path here is built by the tools' modules, never typed in. */
function checkPath(path: string): string {
  if (path.startsWith('/') || path.split('/').some((s) => s === '' || s === '.' || s === '..')) {
    throw new Error(`configure: bad relative path ${JSON.stringify(path)}`)
  }
  return path.split('/').join(sep)
}

async function readState(root: string, tool: string): Promise<State> {
  const text = await readIfExists(join(stateDir(root, tool), 'state.json'))
  if (text === undefined) return { version: 1, files: {}, dirs: [] }
  const state = JSON.parse(text.toString('utf8')) as State
  if (state.version !== 1) throw new Error(`configure: unknown state version in ${join(STATE_DIR, tool)}`)
  return { version: 1, files: { ...state.files }, dirs: [...state.dirs] }
}

async function writeState(root: string, tool: string, state: State): Promise<void> {
  await atomicWrite(join(stateDir(root, tool), 'state.json'), Buffer.from(`${JSON.stringify(state, null, 2)}\n`), 0o600)
}

/** Creates the missing folders of `dir` (relative to root) and returns those it created, outermost first. */
async function makeDirs(root: string, dir: string): Promise<string[]> {
  const parts = dir === '.' ? [] : dir.split('/')
  const created: string[] = []
  for (let i = 1; i <= parts.length; i++) {
    const rel = parts.slice(0, i).join('/')
    try {
      await mkdir(join(root, rel), { mode: 0o755 })
      created.push(rel)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    }
  }
  return created
}

async function removeEmptyDir(dir: string): Promise<boolean> {
  try {
    await rmdir(dir)
    return true
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT') return true
    if (code === 'ENOTEMPTY' || code === 'EEXIST') return false
    throw err
  }
}

/** Write aside and rename: a crash never leaves half a configuration file. */
async function atomicWrite(path: string, bytes: Buffer, mode: number): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o755 })
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`
  try {
    await writeFile(tmp, bytes, { mode, flush: true })
    await chmod(tmp, mode)
    await rename(tmp, path)
  } finally {
    await unlink(tmp).catch(ignoreMissing)
  }
}

export async function readIfExists(path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
}

function ignoreMissing(err: NodeJS.ErrnoException): void {
  if (err.code !== 'ENOENT') throw err
}

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex')
}
