/**
 * The quiz's speed rule, from the gateway's stamps only (never the client's clock,
 * never when the service happened to read the command):
 *
 * - A participant had the question when the last seq the gateway handed to their
 *   socket (`lastSeq`) is at least the question's seq. Otherwise the answer was sent
 *   before the question reached them: it scores nothing.
 * - Time to answer t = `receivedAt − lastSeqAt` (µs): from when the gateway handed the
 *   question to their socket to when it received the answer. Exact because the quiz
 *   publishes nothing into the session while a question is open (feedback and
 *   leaderboard wait for the reveal), so the question is the last frame handed to
 *   every player until they answer.
 * - A right answer scores round(1000 · (1 − t / timeLimit)), at least 0; a wrong one 0.
 */

/** The gateway's stamps on an answer. */
export interface AnswerStamps {
  receivedAtUs: number;
  lastSeq: number;
  lastSeqAtUs: number;
}

/** Time to answer in µs, or null when the participant had not been handed the question. */
export function timeToAnswerUs(stamps: AnswerStamps, questionSeq: number): number | null {
  if (stamps.lastSeq < questionSeq || stamps.lastSeqAtUs <= 0) return null;
  return Math.max(0, stamps.receivedAtUs - stamps.lastSeqAtUs);
}

/** Points for an answer: up to 1000 for a right one, by speed; 0 for a wrong, unseen or too late one. */
export function pointsFor(correct: boolean, tUs: number | null, timeLimitMs: number): number {
  if (!correct || tUs === null) return 0;
  return Math.max(0, Math.round(1000 * (1 - tUs / (timeLimitMs * 1000))));
}
