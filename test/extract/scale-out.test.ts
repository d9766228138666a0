/**
 * docs/scale-out.md promises a Kubernetes Indexed Job, a Slurm array script and merge commands
 * that work as written: the manifest is parsed (YAML in its JSON form), its fields checked, and
 * every headstart command in the doc goes through the real command-line parser and the real
 * shard resolution with the variables each scheduler sets.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseCommandLine } from '../../src/cli.js';
import { UsageError } from '../../src/errors.js';
import { resolveShard } from '../../src/extract/shard.js';
import { thrownSync } from '../helpers/errors.js';

const doc = readFileSync(join(__dirname, '..', '..', 'docs', 'scale-out.md'), 'utf8');
const blocks = (lang: string): string[] => [...doc.matchAll(new RegExp(`\`\`\`${lang}\\n([\\s\\S]*?)\`\`\``, 'g'))].map((m) => m[1]!);

interface Container {
  args: string[];
  resources: { requests: Record<string, unknown>; limits: Record<string, unknown> };
  volumeMounts: { name: string; mountPath: string }[];
}
interface Job {
  apiVersion: string;
  kind: string;
  spec: {
    completionMode: string;
    completions: number;
    parallelism: number;
    template: { spec: { restartPolicy: string; containers: Container[]; volumes: { name: string; persistentVolumeClaim?: { claimName: string } }[] } };
  };
}

describe('the Kubernetes Indexed Job in docs/scale-out.md', () => {
  const yaml = blocks('yaml');
  const job = JSON.parse(yaml[0]!) as Job;
  const spec = job.spec;
  const container = spec.template.spec.containers[0]!;

  it('is one Indexed Job with completions, parallelism and a GPU per pod', () => {
    expect(yaml).toHaveLength(1);
    expect([job.apiVersion, job.kind, spec.completionMode]).toEqual(['batch/v1', 'Job', 'Indexed']);
    expect(Number.isSafeInteger(spec.completions) && spec.completions > 1).toBe(true);
    expect(spec.parallelism).toBeGreaterThanOrEqual(1);
    expect(spec.parallelism).toBeLessThanOrEqual(spec.completions);
    expect(spec.template.spec.restartPolicy).toBe('Never');
    expect(spec.template.spec.containers).toHaveLength(1);
    expect(container.resources.requests['nvidia.com/gpu']).toBe(1);
    expect(container.resources.limits['nvidia.com/gpu']).toBe(1);
  });

  it('mounts one shared volume that holds the data, the weights and the shard files', () => {
    const mount = container.volumeMounts[0]!;
    const volume = spec.template.spec.volumes.find((v) => v.name === mount.name);
    expect(volume?.persistentVolumeClaim?.claimName).toBeTruthy();
    const o = parseCommandLine(container.args).args.options;
    for (const key of ['data', 'weights', 'cache']) expect(String(o[key]).startsWith(`${mount.mountPath}/`)).toBe(true);
  });

  it('runs extract with --shards equal to completions: index 0..completions-1 are the shards, completions is refused', () => {
    const parsed = parseCommandLine(container.args);
    expect(parsed.command?.name).toBe('extract');
    const o = parsed.args.options;
    expect(['train', 'test']).toContain(o['split']);
    expect(o['shards']).toBe(spec.completions);
    for (let i = 0; i < spec.completions; i++) expect(resolveShard(undefined, o['shards'] as number, { JOB_COMPLETION_INDEX: String(i) })).toMatchObject({ index: i, count: spec.completions });
    expect(thrownSync(() => resolveShard(undefined, o['shards'] as number, { JOB_COMPLETION_INDEX: String(spec.completions) }))).toBeInstanceOf(UsageError);
  });
});

describe('the Slurm array script and the merge step in docs/scale-out.md', () => {
  const script = blocks('bash').find((b) => b.includes('#SBATCH'))!;

  it('each array task is one shard, 0-based from SLURM_ARRAY_TASK_MIN, and asks for a GPU', () => {
    const [, min, max] = /^#SBATCH --array=(\d+)-(\d+)$/m.exec(script)!.map(Number) as [number, number, number];
    expect(script).toMatch(/^#SBATCH --gres=gpu:1$/m);
    const line = /^headstart (extract[\s\S]*?[^\\])$/m.exec(script)![1]!.replace(/\\\n\s*/g, ' ');
    const o = parseCommandLine(line.split(/\s+/)).args.options;
    expect(['train', 'test']).toContain(o['split']);
    const count = String(max - min + 1);
    const indices = [];
    for (let id = min; id <= max; id++)
      indices.push(
        resolveShard(o['shard'] as string | undefined, o['shards'] as number | undefined, { SLURM_ARRAY_TASK_ID: String(id), SLURM_ARRAY_TASK_MIN: String(min), SLURM_ARRAY_TASK_COUNT: count })!.index,
      );
    expect(indices).toEqual(Array.from({ length: max - min + 1 }, (_, i) => i));
  });

  it('the merge commands parse', () => {
    const merges = blocks('bash')
      .flatMap((b) => b.split('\n'))
      .filter((l) => l.startsWith('headstart merge '));
    expect(merges.length).toBe(2);
    for (const m of merges) expect(parseCommandLine(m.split(/\s+/).slice(1)).command?.name).toBe('merge');
  });

  it('the Dockerfile builds a worker from the npm package, and the doc says it was not built', () => {
    const dockerfile = readFileSync(join(__dirname, '..', '..', 'Dockerfile'), 'utf8');
    expect(dockerfile).toMatch(/^COPY headstart-\*\.tgz /m);
    expect(dockerfile).toMatch(/^ENTRYPOINT \["headstart"\]$/m);
    expect(doc).toContain('could not\nbe built where it was written');
  });
});
