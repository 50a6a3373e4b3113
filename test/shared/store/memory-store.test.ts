import { MemoryContentStore, MemoryManifestCache } from '../../../shared/store/index.ts'
import { contentStoreConformance } from './content-store.conformance.ts'

contentStoreConformance('MemoryContentStore', async (opts) => {
  const blobs = new MemoryContentStore(opts)
  return { blobs, manifests: new MemoryManifestCache(), stop: () => blobs.stop() }
})
