/** `upcycle evolve CONFIG.yml OUT_DIR`: CMA-ES over merge parameters with a local, smooth fitness. */
import { parseArgs } from 'node:util';
import type { Command } from './main.js';

export const evolveCommand: Command = {
  name: 'evolve',
  summary: 'Search merge parameters (per-model, per-layer-group weight and density) with CMA-ES against a local fitness; writes the best model, its recipe and the per-generation log.',
  usage: 'upcycle evolve CONFIG.yml OUT_DIR [--overwrite] [--json]',
  async run(args) {
    const { values, positionals } = parseArgs({ args, options: { overwrite: { type: 'boolean' }, json: { type: 'boolean' } }, allowPositionals: true });
    if (positionals.length !== 2) throw new Error('expected CONFIG.yml and OUT_DIR');
    const { readEvolveYaml, evolveMerge } = await import('../evolve/evolve.js');
    const recipe = await readEvolveYaml(positionals[0]!);
    const ac = new AbortController();
    const onSigint = () => ac.abort(new Error('cancelled by the user'));
    process.once('SIGINT', onSigint);
    try {
      const r = await evolveMerge(recipe, positionals[1]!, {
        signal: ac.signal,
        overwrite: values.overwrite,
        onGeneration: (g) => process.stderr.write(`generation ${g.generation}: best ${g.best.toFixed(4)}, mean ${g.mean.toFixed(4)}, best so far ${g.bestSoFar.toFixed(4)} (σ ${g.sigma.toFixed(3)}, ${g.evaluations} evaluations)\n`),
      });
      if (values.json) console.log(JSON.stringify(r, null, 2));
      else console.log(`best fitness ${r.bestFitness.toFixed(4)} (mergekit's default recipe ${r.defaultFitness.toFixed(4)}, search start ${r.startFitness.toFixed(4)}) after ${r.evaluations} evaluations in ${r.seconds.toFixed(0)} s\n  model: ${r.out}/model\n  recipe: ${r.out}/best_recipe.yml, log: ${r.out}/evolution_log.json`);
      return 0;
    } finally {
      process.off('SIGINT', onSigint);
    }
  },
};
