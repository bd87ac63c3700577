/*
 * The README's C example: build a table, remap it, exec through it.
 * Built and run by .ci/run with a plain C compiler against include/.
 */
#include <fdremap.h>

#include <stdio.h>

static int
activate(struct file *fp, struct image_args *args, struct thread *td)
{

	(void)fp;
	(void)td;
	printf("exec: argc %d, new table of %d descriptors\n", args->argc,
	    args->fdp->fd_lastfile + 1);
	return (0);
}

static const struct fileops plain = { .fo_flags = DFLAG_PASSABLE };
static const struct fileops exe = { .fo_flags = DFLAG_PASSABLE,
    .fo_exec = activate };

int
main(void)
{
	struct thread *td = proc_create();
	struct filedesc *copy;
	struct file *fp;
	int fd, fds[] = { 2, 0, 2 };

	for (int i = 0; i < 4; i++) {
		falloc_noinstall(td, &fp);
		finit(fp, FREAD, DTYPE_VNODE, NULL, i == 3 ? &exe : &plain);
		finstall(td, fp, &fd, 0, NULL);
		fdrop(fp, td);		/* the table holds the only reference */
	}
	if (fdcopy_remapped(td->td_proc->p_fd, fds, 3, &copy) != 0)
		return (1);
	printf("remapped: slot 0 is old 2: %s, count %u\n",
	    copy->fd_ofiles[0].fde_file ==
	    td->td_proc->p_fd->fd_ofiles[2].fde_file ? "yes" : "no",
	    file_count(copy->fd_ofiles[0].fde_file));
	fdescfree_remapped(copy);
	if (proc_exec(td, 3, "hello\0world", 11, fds, 3) != 0)
		return (1);
	printf("after exec: %d descriptors\n", td->td_proc->p_fd->fd_lastfile + 1);
	proc_destroy(td);
	return (0);
}
