/**
 * What a container of one of the repo's Dockerfiles runs, read from the file itself (dockerfile-ast):
 * a stage's ENTRYPOINT and CMD (exec form: JSON arrays), ENV, USER and HEALTHCHECK, following
 * `FROM <stage>` through the stages it builds on as Docker does (a stage that sets ENTRYPOINT drops the
 * CMD it inherited). Tests and benches spawn `command` from the repo root, which is the images' WORKDIR.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { DockerfileParser, type Instruction, type JSONInstruction, type Property } from 'dockerfile-ast';
import { repoRoot } from './stack.ts';

export interface ImageConfig {
  /** ENTRYPOINT then CMD: the command line the container runs. */
  command: string[];
  entrypoint: string[];
  cmd: string[];
  env: Record<string, string>;
  user: string | undefined;
  /** The HEALTHCHECK's `CMD [...]`, when the stage (or one it builds on) has one. */
  healthcheck: string[] | undefined;
  stopSignal: string | undefined;
}

interface Stage {
  name: string | undefined;
  base: string;
  instructions: Instruction[];
}

/** A JSON array argument (exec form), or an error naming the instruction. */
function jsonArray(file: string, i: Instruction, text: string): string[] {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    v = undefined;
  }
  if (!Array.isArray(v) || !v.every((s) => typeof s === 'string'))
    throw new Error(
      `${file}:${i.getRange().start.line + 1}: ${i.getKeyword()} is not in exec form (a JSON array): ${text}`,
    );
  return v as string[];
}

function stagesOf(file: string): Stage[] {
  const parsed = DockerfileParser.parse(readFileSync(path.join(repoRoot, file), 'utf8'));
  const stages: Stage[] = [];
  for (const i of parsed.getInstructions()) {
    if (i.getKeyword() === 'FROM') {
      const from = parsed.getFROMs().find((f) => f.getRange().start.line === i.getRange().start.line)!;
      stages.push({ name: from.getBuildStage() ?? undefined, base: from.getImage() ?? '', instructions: [] });
    } else stages.at(-1)?.instructions.push(i);
  }
  return stages;
}

/** The configuration of `stage` (default: the last stage) of `file`, a path relative to the repo. */
export function imageConfig(file: string, stage?: string): ImageConfig {
  const stages = stagesOf(file);
  const find = (name: string | undefined) =>
    name === undefined ? stages.at(-1) : stages.find((s) => s.name === name);
  /** `entrypointKnown`: some stage of this file set it (an outside base image's is not in the file). */
  const resolve = (s: Stage): ImageConfig & { entrypointKnown: boolean } => {
    const parent = find(s.base);
    const c = parent
      ? { ...resolve(parent) }
      : {
          command: [],
          entrypoint: [],
          cmd: [],
          env: {},
          user: undefined,
          healthcheck: undefined,
          stopSignal: undefined,
          entrypointKnown: false,
        };
    c.env = { ...c.env };
    for (const i of s.instructions) {
      const json = () => JSON.stringify((i as JSONInstruction).getJSONStrings().map((a) => a.getJSONValue()));
      switch (i.getKeyword()) {
        case 'ENTRYPOINT':
          c.entrypoint = jsonArray(file, i, json());
          c.entrypointKnown = true;
          c.cmd = [];
          break;
        case 'CMD':
          c.cmd = jsonArray(file, i, json());
          break;
        case 'ENV':
          for (const p of (i as unknown as { getProperties(): Property[] }).getProperties())
            c.env[p.getName()] = p.getValue() ?? '';
          break;
        case 'USER':
          c.user = i.getArgumentsContent() ?? undefined;
          break;
        case 'STOPSIGNAL':
          c.stopSignal = i.getArgumentsContent() ?? undefined;
          break;
        case 'HEALTHCHECK': {
          const m = /^(?:--\S+\s+)*CMD\s+([\s\S]*)$/.exec((i.getArgumentsContent() ?? '').trim());
          c.healthcheck = m ? jsonArray(file, i, m[1]!) : undefined;
          break;
        }
      }
    }
    c.command = [...c.entrypoint, ...c.cmd];
    return c;
  };
  const s = find(stage);
  if (!s) throw new Error(`${file} has no stage "${stage}"`);
  const { entrypointKnown, ...config } = resolve(s);
  if (!entrypointKnown)
    throw new Error(
      `${file}: stage ${stage ?? '(last)'} runs its base image's ENTRYPOINT, which the file does not show`,
    );
  if (config.cmd.length === 0) throw new Error(`${file}: stage ${stage ?? '(last)'} has no CMD`);
  return config;
}
