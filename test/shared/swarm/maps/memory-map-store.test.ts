import { MemoryMapStore } from '../../../../shared/swarm/maps/index.ts'
import { mapStoreConformance } from './map-store.conformance.ts'

mapStoreConformance('MemoryMapStore', async () => new MemoryMapStore())
