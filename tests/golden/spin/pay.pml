/* saga 'pay' under faults fail,timeout,comp_fail,late,crash=1,duplicate=1, exported by sagaproof.
   Steps (index order): reserve, charge.
   One d_step per event of saga_models.semantics; the variables are the
   semantics' flat state tuple, so SPIN's stored states are sagaproof's
   states. Check with: spin -o2 -a; gcc -DSAFETY -DNOREDUCE; ./pan -c0 */

#define P_RUNNING 0
#define P_COMPENSATING 1
#define P_COMPLETED 2
#define P_COMPENSATED 3
#define P_FAILED 4
#define P_STUCK 5
#define S_PENDING 0
#define S_RUNNING 1
#define S_OK 2
#define S_FAILED 3
#define S_UNKNOWN 4
#define S_RETRY_FAILED 5
#define S_RETRY_UNKNOWN 6
#define C_NONE 0
#define C_RUNNING 1
#define C_DONE 2
#define C_RETRY 3

/* header of the state tuple */
byte phase; bit down; byte crashes; byte dups; byte trigger; byte chain_pos;
/* seven fields per step */
/* dl starts at 1, as in semantics.initial_state */
byte st[2]; byte at[2]; byte dl[2] = 1; byte ef[2]; byte cs[2]; byte ca[2]; bit lt[2];
/* assertion tags: pan's message names the property; not in the state */
hidden byte compensation_completeness;
hidden byte eventual_consistency;
hidden byte deadlock;

inline settle() {
  if
  :: phase == P_RUNNING && (st[0] == S_OK && st[1] == S_OK) -> phase = P_COMPLETED
  :: phase == P_COMPENSATING && !(st[0] == S_RUNNING || st[1] == S_RUNNING) && !(cs[0] == C_RUNNING || cs[1] == C_RUNNING) && !((cs[0] != C_DONE && (st[0] == S_OK || st[0] == S_UNKNOWN || st[0] == S_RETRY_UNKNOWN)) || (cs[1] != C_DONE && (st[1] == S_OK || st[1] == S_UNKNOWN || st[1] == S_RETRY_UNKNOWN))) ->
     phase = ((cs[0] == C_DONE || cs[1] == C_DONE) -> P_COMPENSATED : P_FAILED)
  :: else -> skip
  fi
}

inline check() {
  assert(compensation_completeness == 0 && (!(cs[0] != C_NONE && st[0] == S_PENDING) && !(cs[1] != C_NONE && st[1] == S_PENDING)) && (!(phase == P_COMPENSATED || phase == P_FAILED) || (!(ef[0] > 0 && cs[0] != C_DONE) && !(ef[1] > 0 && cs[1] != C_DONE))));
  assert(eventual_consistency == 0 && phase != P_STUCK && (phase != P_COMPLETED || (ef[0] == 1 && ef[1] == 1)) && (!(phase == P_COMPENSATED || phase == P_FAILED) || (ef[0] == 0 && ef[1] == 0)))
}

active proctype saga() {
end:
  do
  :: d_step { /* send reserve */
       phase < P_COMPLETED && !down && phase == P_RUNNING &&
       (st[0] == S_RETRY_FAILED || st[0] == S_RETRY_UNKNOWN || (st[0] == S_PENDING &&
       true))
       ->
       st[0] = S_RUNNING;
       at[0] = (at[0] < 1 -> at[0] + 1 : 1);
       dl[0] = 1;
       settle(); check()
     }
  :: d_step { /* send charge */
       phase < P_COMPLETED && !down && phase == P_RUNNING &&
       (st[1] == S_RETRY_FAILED || st[1] == S_RETRY_UNKNOWN || (st[1] == S_PENDING &&
       (st[0] == S_OK)))
       ->
       st[1] = S_RUNNING;
       at[1] = (at[1] < 2 -> at[1] + 1 : 2);
       dl[1] = 1;
       settle(); check()
     }
  :: d_step { /* reply reserve ok +1 */
       phase < P_COMPLETED && !down && st[0] == S_RUNNING && (ef[0] == 0)
       ->
       ef[0] = (ef[0] + 1 > 2 -> 2 : ef[0] + 1);
       lt[0] = 0;
       dl[0] = 1;
       st[0] = S_OK;
       at[0] = 0;
       settle(); check()
     }
  :: d_step { /* reply reserve ok +0 */
       phase < P_COMPLETED && !down && st[0] == S_RUNNING && (ef[0] != 0)
       ->
       lt[0] = 0;
       dl[0] = 1;
       st[0] = S_OK;
       at[0] = 0;
       settle(); check()
     }
  :: d_step { /* reply reserve failed +0 */
       phase < P_COMPLETED && !down && st[0] == S_RUNNING && (ef[0] == 0)
       ->
       lt[0] = 0;
       dl[0] = 1;
       if :: (phase != P_RUNNING) -> st[0] = S_FAILED; at[0] = 0 :: else -> if :: (at[0] >= 1) -> st[0] = S_FAILED; at[0] = 0; phase = P_COMPENSATING; trigger = 1; chain_pos = 0 :: else -> st[0] = S_RETRY_FAILED fi fi;
       settle(); check()
     }
  :: d_step { /* reply reserve unknown +0 */
       phase < P_COMPLETED && !down && st[0] == S_RUNNING && (true)
       ->
       lt[0] = (ef[0] == 0 -> 1 : 0);
       dl[0] = 1;
       if :: (phase != P_RUNNING) -> st[0] = S_UNKNOWN; at[0] = 0 :: else -> if :: (at[0] >= 1) -> st[0] = S_UNKNOWN; at[0] = 0; phase = P_COMPENSATING; trigger = 1; chain_pos = 0 :: else -> st[0] = S_RETRY_UNKNOWN fi fi;
       settle(); check()
     }
  :: d_step { /* reply reserve unknown +1 */
       phase < P_COMPLETED && !down && st[0] == S_RUNNING && (ef[0] == 0)
       ->
       ef[0] = (ef[0] + 1 > 2 -> 2 : ef[0] + 1);
       lt[0] = 0;
       dl[0] = 1;
       if :: (phase != P_RUNNING) -> st[0] = S_UNKNOWN; at[0] = 0 :: else -> if :: (at[0] >= 1) -> st[0] = S_UNKNOWN; at[0] = 0; phase = P_COMPENSATING; trigger = 1; chain_pos = 0 :: else -> st[0] = S_RETRY_UNKNOWN fi fi;
       settle(); check()
     }
  :: d_step { /* reply charge ok +1 */
       phase < P_COMPLETED && !down && st[1] == S_RUNNING && (true)
       ->
       ef[1] = (ef[1] + 1 > 2 -> 2 : ef[1] + 1);
       dl[1] = 1;
       st[1] = S_OK;
       at[1] = 0;
       settle(); check()
     }
  :: d_step { /* reply charge ok +2 */
       phase < P_COMPLETED && !down && st[1] == S_RUNNING && (dl[1] == 2)
       ->
       ef[1] = (ef[1] + 2 > 2 -> 2 : ef[1] + 2);
       dl[1] = 1;
       st[1] = S_OK;
       at[1] = 0;
       settle(); check()
     }
  :: d_step { /* reply charge failed +0 */
       phase < P_COMPLETED && !down && st[1] == S_RUNNING && (true)
       ->
       dl[1] = 1;
       if :: (phase != P_RUNNING) -> st[1] = S_FAILED; at[1] = 0 :: else -> if :: (at[1] >= 2) -> st[1] = S_FAILED; at[1] = 0; phase = P_COMPENSATING; trigger = 2; chain_pos = 0 :: else -> st[1] = S_RETRY_FAILED fi fi;
       settle(); check()
     }
  :: d_step { /* reply charge failed +1 */
       phase < P_COMPLETED && !down && st[1] == S_RUNNING && (dl[1] == 2)
       ->
       ef[1] = (ef[1] + 1 > 2 -> 2 : ef[1] + 1);
       dl[1] = 1;
       if :: (phase != P_RUNNING) -> st[1] = S_FAILED; at[1] = 0 :: else -> if :: (at[1] >= 2) -> st[1] = S_FAILED; at[1] = 0; phase = P_COMPENSATING; trigger = 2; chain_pos = 0 :: else -> st[1] = S_RETRY_FAILED fi fi;
       settle(); check()
     }
  :: d_step { /* duplicate charge */
       phase < P_COMPLETED && !down && st[1] == S_RUNNING && dl[1] == 1 && dups < 1
       ->
       dl[1] = 2;
       dups++;
       settle(); check()
     }
  :: d_step { /* crash */
       phase < P_COMPLETED && !down && crashes < 1
       ->
       down = 1;
       crashes++;
       settle(); check()
     }
  :: d_step { /* recover */
       phase < P_COMPLETED && down
       ->
       down = 0;
       if :: (st[1] == S_RUNNING) -> dl[1] = 2 :: else -> skip fi;
       settle(); check()
     }
  :: d_step { /* send compensation of reserve */
       phase < P_COMPLETED && !down && phase == P_COMPENSATING &&
       !(st[0] == S_RUNNING || st[1] == S_RUNNING) &&
       (cs[0] == C_NONE || cs[0] == C_RETRY) &&
       (st[0] == S_OK || st[0] == S_UNKNOWN || st[0] == S_RETRY_UNKNOWN) &&
       ((cs[1] == C_DONE || !(st[1] == S_OK || st[1] == S_UNKNOWN || st[1] == S_RETRY_UNKNOWN)))
       ->
       assert(compensation_completeness == 0 && ((cs[1] == C_DONE || !(st[1] == S_OK || st[1] == S_UNKNOWN || st[1] == S_RETRY_UNKNOWN))));
       cs[0] = C_RUNNING;
       settle(); check()
     }
  :: d_step { /* send compensation of charge */
       phase < P_COMPLETED && !down && phase == P_COMPENSATING &&
       !(st[0] == S_RUNNING || st[1] == S_RUNNING) &&
       (cs[1] == C_NONE || cs[1] == C_RETRY) &&
       (st[1] == S_OK || st[1] == S_UNKNOWN || st[1] == S_RETRY_UNKNOWN) && true
       ->
       assert(compensation_completeness == 0 && true);
       cs[1] = C_RUNNING;
       settle(); check()
     }
  :: d_step { /* compensation of reserve ok */
       phase < P_COMPLETED && !down && cs[0] == C_RUNNING && true
       ->
       cs[0] = C_DONE;
       ca[0] = 0;
       if :: ef[0] > 0 -> ef[0]-- :: else -> skip fi;
       settle(); check()
     }
  :: d_step { /* compensation of reserve failed */
       phase < P_COMPLETED && !down && cs[0] == C_RUNNING && true
       ->
       ca[0] = (ca[0] < 2 -> ca[0] + 1 : 2);
       cs[0] = C_RETRY;
       if :: ca[0] >= 2 -> phase = P_STUCK :: else -> skip fi;
       settle(); check()
     }
  :: d_step { /* compensation of reserve unknown */
       phase < P_COMPLETED && !down && cs[0] == C_RUNNING && true
       ->
       ca[0] = (ca[0] < 2 -> ca[0] + 1 : 2);
       cs[0] = C_RETRY;
       if :: ca[0] >= 2 -> phase = P_STUCK :: else -> skip fi;
       settle(); check()
     }
  :: d_step { /* compensation of charge ok */
       phase < P_COMPLETED && !down && cs[1] == C_RUNNING && true
       ->
       cs[1] = C_DONE;
       ca[1] = 0;
       if :: ef[1] > 0 -> ef[1]-- :: else -> skip fi;
       settle(); check()
     }
  :: d_step { /* compensation of charge failed */
       phase < P_COMPLETED && !down && cs[1] == C_RUNNING && true
       ->
       ca[1] = (ca[1] < 2 -> ca[1] + 1 : 2);
       cs[1] = C_RETRY;
       if :: ca[1] >= 2 -> phase = P_STUCK :: else -> skip fi;
       settle(); check()
     }
  :: d_step { /* late reserve +1 */
       !down && lt[0] == 1
       ->
       ef[0] = (ef[0] + 1 > 2 -> 2 : ef[0] + 1);
       lt[0] = 0;
       check()
     }
  :: d_step { /* nothing enabled before a terminal phase */
       timeout && phase < P_COMPLETED -> assert(deadlock != 0)
     }
  od
}
