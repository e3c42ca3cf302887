/**
 * Which onnxruntime-node 1.30 execution providers exist on which platform (research §5 table).
 * Pure code so it can be tested for every platform from any machine.
 */

export type ProviderName = 'cuda' | 'dml' | 'coreml' | 'webgpu' | 'cpu';
export type ProviderRequest = ProviderName | 'auto';

export const PROVIDER_NAMES: readonly ProviderName[] = ['cuda', 'dml', 'coreml', 'webgpu', 'cpu'];

/**
 * Providers compiled into the onnxruntime-node 1.30 binaries for a platform. The npm package ships
 * binaries for win32 x64/arm64, linux x64/arm64 and darwin arm64 only (no darwin x64 binary,
 * despite its README), so other platforms get an empty list. CUDA is listed for linux x64 even
 * though its libraries are downloaded at install time and may be missing; see `cudaInstalled`.
 */
export function platformProviders(platform: string, arch: string): ProviderName[] {
  const key = `${platform}/${arch}`;
  switch (key) {
    case 'win32/x64':
    case 'win32/arm64':
      return ['dml', 'webgpu', 'cpu'];
    case 'linux/x64':
      return ['cuda', 'webgpu', 'cpu'];
    case 'linux/arm64':
      return ['cpu'];
    case 'darwin/arm64':
      return ['coreml', 'webgpu', 'cpu'];
    default:
      return [];
  }
}

/**
 * Order tried for 'auto'. WebGPU is experimental in 1.30 and needs an adapter, and CoreML covers
 * few of the LLM ops these graphs use (the rest would run on CPU with copies in between), so
 * neither is picked automatically; users can still ask for them by name.
 */
export const AUTO_ORDER: readonly ProviderName[] = ['cuda', 'dml', 'cpu'];
