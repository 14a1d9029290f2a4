import { Router } from 'express';
import { isJobName, jobNames } from '@mlq/contract';
import { badRequest } from '../errors.ts';
import type { EventsHub } from '../events-hub.ts';

/** `GET /v1/events[?type=]`: every job's state changes and progress, as server-sent events. */
export function eventsRouter(hub: EventsHub): Router {
  const r = Router();
  r.get('/v1/events', (req, res) => {
    const type = req.query.type;
    if (type !== undefined && (typeof type !== 'string' || !isJobName(type))) {
      throw badRequest(`type must be one of ${jobNames.join(', ')}`, [
        { field: 'type', message: 'unknown job type' },
      ]);
    }
    hub.subscribe(res, type);
  });
  return r;
}
