export { type Agent, type AgentConfig, type StartAgentOptions, startAgent, sumMetric } from './agent.ts'
export { Daemon, DaemonError, type DaemonOptions } from '../daemon.ts'
export { Cleanup } from './cleanup.ts'
export { type Dockerd, shoalCli, startDockerd, treeSnapshot } from './configure.ts'
export {
  type Containerd,
  type CtrPullOptions,
  type HostsTomlOptions,
  startContainerd,
  writeHostsToml,
} from './containerd.ts'
export { basicAuth, type FetchOptions, fetchBlob, fetchManifest, type PushedImage, pushImage } from './images.ts'
export { type PodmanImage, type PodmanOptions, podmanInspect, podmanPull, writeRegistriesConf } from './podman.ts'
export {
  CommandError,
  describeCommand,
  freePort,
  type RunResult,
  removeDir,
  run,
  runOk,
  tempDir,
  waitForHttp,
} from './process.ts'
export {
  type AccessEntry,
  type BlobGets,
  type Registry,
  type RegistryAuth,
  type RegistryUser,
  type StartRegistryOptions,
  startRegistry,
  type TokenIssuer,
} from './registry.ts'
export {
  type Credentials,
  type DirBlob,
  dirBlobs,
  type SkopeoCopyOptions,
  skopeoCopy,
  skopeoInspect,
} from './skopeo.ts'
export {
  type RegistryAction,
  type StartTokenServerOptions,
  startTokenServer,
  type TokenRequest,
  type TokenServer,
  type TokenUser,
} from './token-server.ts'
