// The pipeline as a picture: one box per stage in the order text flows through the model, this
// computer's stage highlighted with the layers it holds. With the network's dashboard loaded (for
// the same run), each box also says how many computers hold that stage.
import type { Dashboard } from '../../../orchestrator-client/protocol.ts';
import type { StageInfo } from '../../../electron/ipc-contract.ts';
import { formatCompact, layerRange, plural, stageName } from '../format.ts';

export function StagePicture({ stage, dashboard }: { stage: StageInfo; dashboard: Dashboard | null }) {
  const network = dashboard && dashboard.run_id === stage.runId ? dashboard : null;
  const boxes = Array.from({ length: stage.stageCount }, (_, i) => {
    const info = network?.stages.find((s) => s.stage === i);
    const mine = i === stage.stage;
    return { i, mine, layers: mine ? stage.layers : info?.layers, params: mine ? stage.params : info?.params, miners: info?.miners };
  });
  const label = `The model is split into ${plural(stage.stageCount, 'stage')}. This computer holds ${stageName(stage.stage, stage.stageCount).toLowerCase()}, ${layerRange(stage.layers)}.`;
  return (
    <figure className="pipeline" data-testid="stage-picture" data-stage={stage.stage} data-stage-count={stage.stageCount}>
      <ol className="pipeline-stages" aria-label={label}>
        {boxes.map((b) => (
          <li key={b.i} className={b.mine ? 'pipeline-stage mine' : 'pipeline-stage'} data-stage={b.i} aria-current={b.mine ? 'true' : undefined}>
            <span className="pipeline-name">{stageName(b.i)}</span>
            {b.layers ? <span className="pipeline-layers">{layerRange(b.layers)}</span> : null}
            {b.params !== undefined ? <span className="pipeline-params">{formatCompact(b.params)} parameters</span> : null}
            {b.miners !== undefined ? <span className="pipeline-miners">{plural(b.miners, 'computer')}</span> : null}
            {b.mine ? <span className="pipeline-you">This computer</span> : null}
          </li>
        ))}
      </ol>
      <figcaption>
        Text enters at stage 1 and passes through every stage to the last, which checks the model's guess of the next word. The corrections then flow back, and each computer
        improves the layers it holds.
      </figcaption>
    </figure>
  );
}
