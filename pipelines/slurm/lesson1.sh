#!/bin/sh
# lesson1.sh: fast.ai lesson 1 on a Slurm cluster.  The stages that map
# records one by one (imgprep, precompute, tta) run as job arrays of N
# shards; each join (tensor cat) and the fits run as single jobs after them.
# Every job is a make of pipelines/lesson1.mk with the same variables, so a
# job array's task I makes the shard files WORK/shards/NAME.I-of-N and the
# joins are the very bytes an unsharded run writes.  WORK and DATA must be
# on a filesystem every node sees.
#
#   pipelines/slurm/lesson1.sh [-n N] [-p PARTITION] [VAR=value ...]
#
# VAR=value are lesson1.mk's variables (DATA, ARCH, WEIGHTS, CFG, WORK, ...).
# It prints the job ids.  SBATCH names the submitting program (sbatch;
# tests/slurm.bats gives a stand-in that runs the jobs in order).
set -eu
N=4
PART=
usage() { echo "usage: lesson1.sh [-n N] [-p PARTITION] [VAR=value ...]" >&2; exit 2; }
while getopts n:p: o; do
	case $o in
	n) N=$OPTARG ;;
	p) PART=$OPTARG ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
case $N in '' | *[!0-9]* | 0) echo "lesson1.sh: -n $N: a number of shards, 1 or more" >&2; exit 2 ;; esac
for v in "$@"; do
	case $v in *=*) ;; *) echo "lesson1.sh: $v: VAR=value expected" >&2; exit 2 ;; esac
done
SBATCH=${SBATCH:-sbatch}
HERE=$(cd "$(dirname "$0")/../.." && pwd)
# the make every job runs: the same variables, N shards, one thread per
# shard task unless the job has more cores
MAKE1="make -C $HERE -f pipelines/lesson1.mk SHARDS=$N JOBS=\${SLURM_CPUS_PER_TASK:-1}"
for v in "$@"; do
	MAKE1="$MAKE1 '$v'"
done
WORK=$(make -s -C "$HERE" -f pipelines/lesson1.mk "$@" SHARDS="$N" lesson1-work)

# submit NAME DEPENDENCY ARRAY COMMAND: a job id
submit() {
	set -- "$1" "$2" "$3" "$4"
	$SBATCH --parsable --job-name="lesson1-$1" ${PART:+--partition="$PART"} \
		${2:+--dependency=afterok:$2} ${3:+--array=$3} \
		--output="$WORK/slurm-%x-%A_%a.out" --wrap="$4"
}
# a job array task's shard files: TARGETS of stage files, task I of N
parts() {
	t=
	for f in "$@"; do
		t="$t $WORK/shards/$f.\${SLURM_ARRAY_TASK_ID}-of-$N"
	done
	echo "$t"
}
mkdir -p "$WORK/shards"
a=$(submit imgprep "" "1-$N" "$MAKE1 $(parts train.images)")
b=$(submit join-train "$a" "" "$MAKE1 $WORK/train.images")
c=$(submit imgprep-rest "$b" "1-$N" "$MAKE1 $(parts valid.images train.scaled valid.scaled)")
d=$(submit model "$c" "" "$MAKE1 $WORK/valid.images $WORK/train.scaled $WORK/valid.scaled $WORK/model")
e=$(submit precompute "$d" "1-$N" "$MAKE1 $(parts train.act valid.act)")
# the fits: one job (data-parallel over MPI: see cnnpipe(7))
f=$(submit fit "$e" "" "$MAKE1 $WORK/unfrozen.model")
g=$(submit tta "$f" "1-$N" "$MAKE1 $(parts valid.pred valid.tta.pred)")
h=$(submit report "$g" "" "$MAKE1 lesson1")
echo "$a $b $c $d $e $f $g $h"
