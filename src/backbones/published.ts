/**
 * The files a backbone's weights are published as: `published` (the default) and, for a backbone
 * whose publisher has more than one version of the same layout (ResNet-50's IMAGENET1K_V1 and V2),
 * the others, each named by its `version`.
 */
import { UsageError, expected } from '../errors.js';
import type { Backbone, PublishedWeights } from './types.js';

/** Every published file, the default first; empty for a backbone without published weights. */
export function publishedFiles(backbone: Backbone): PublishedWeights[] {
  return backbone.published ? [backbone.published, ...(backbone.otherPublished ?? [])] : [];
}

/** The versions `fetch --weights-version` offers for it (empty when it publishes one file or none). */
export function publishedVersions(backbone: Backbone): string[] {
  return publishedFiles(backbone).flatMap((p) => (p.version === undefined ? [] : [p.version]));
}

/** The published file of `version` (the default when undefined); UsageError naming `where` and the versions otherwise. */
export function publishedVersion(backbone: Backbone, version: string | undefined, where = '--weights-version'): PublishedWeights | undefined {
  if (version === undefined) return backbone.published;
  const found = publishedFiles(backbone).find((p) => p.version === version);
  if (found !== undefined) return found;
  const versions = publishedVersions(backbone);
  const offered = versions.length === 0 ? `nothing (${backbone.name} publishes ${backbone.published ? 'one file' : 'no weights'})` : `one of ${versions.join('|')}`;
  throw new UsageError(expected(offered, `${where} of ${backbone.id}`, version));
}

/** The published file whose SHA-256 prefix starts `weightsId` (a head's or a cache's), else undefined. */
export function publishedMatching(backbone: Backbone, weightsId: string): PublishedWeights | undefined {
  return publishedFiles(backbone).find((p) => p.sha256Prefix !== undefined && weightsId.startsWith(p.sha256Prefix));
}
